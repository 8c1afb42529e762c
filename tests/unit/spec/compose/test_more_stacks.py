"""More real-world shapes: a classic WordPress file, an IoT gateway that
needs the device's hardware, and a sweep of odd values through every key."""

from __future__ import annotations

from textwrap import dedent

import pytest

from edgefleet.spec.compose import parse, validate
from edgefleet.spec.model import Dependency, Mount, Port
from edgefleet.spec.service import KNOWN_KEYS

WORDPRESS = dedent("""\
    version: '3.1'

    services:

      wordpress:
        image: wordpress
        restart: always
        ports:
          - 8080:80
        environment:
          WORDPRESS_DB_HOST: db
          WORDPRESS_DB_USER: exampleuser
          WORDPRESS_DB_PASSWORD: examplepass
          WORDPRESS_DB_NAME: exampledb
        volumes:
          - wordpress:/var/www/html
        depends_on:
          - db

      db:
        image: mysql:8.0
        restart: always
        environment:
          MYSQL_DATABASE: exampledb
          MYSQL_USER: exampleuser
          MYSQL_PASSWORD: examplepass
          MYSQL_RANDOM_ROOT_PASSWORD: '1'
        volumes:
          - db:/var/lib/mysql
        command: --default-authentication-plugin=mysql_native_password

    volumes:
      wordpress:
      db:
    """)


def test_wordpress_official_example() -> None:
    spec, warnings = parse(WORDPRESS)
    wordpress = spec.services["wordpress"]
    assert wordpress.ports == [Port(target=80, published=8080)]
    assert wordpress.depends_on == {"db": Dependency()}
    assert wordpress.volumes == [Mount(type="volume", source="wordpress", target="/var/www/html")]
    assert spec.services["db"].command == ["--default-authentication-plugin=mysql_native_password"]
    assert spec.services["db"].environment["MYSQL_RANDOM_ROOT_PASSWORD"] == "1"
    assert [(f.key, f.line) for f in warnings] == [
        ("version", 1),
        ("services.wordpress.ports[0]", 9),
    ]
    assert "reachable through the proxy" in warnings[1].message


IOT_GATEWAY = dedent("""\
    services:
      mqtt:
        image: eclipse-mosquitto:2
        ports: ["1883", "9001"]
        volumes:
          - type: volume
            source: mqtt-data
            target: /mosquitto/data
          - mqtt-log:/mosquitto/log
        healthcheck:
          test: ["CMD", "mosquitto_sub", "-t", "$$SYS/#", "-C", "1", "-W", "3"]
          interval: 30s
          start_period: 20s
      zigbee:
        image: koenkk/zigbee2mqtt:1.39.0
        devices:
          - /dev/ttyACM0:/dev/ttyACM0
        group_add: [dialout]
        environment:
          TZ: ${TZ:-UTC}
          ZIGBEE2MQTT_CONFIG_MQTT_SERVER: mqtt://mqtt:1883
        depends_on:
          mqtt: {condition: service_healthy}
        restart: unless-stopped
        stop_grace_period: 30s
      homeassistant:
        image: ghcr.io/home-assistant/home-assistant:stable
        network_mode: host
        privileged: true
        volumes:
          - /run/dbus:/run/dbus:ro
          - ha-config:/config
        depends_on: {mqtt: {condition: service_started}}
        cap_add: [NET_ADMIN, NET_RAW]
    volumes:
      mqtt-data:
      mqtt-log:
      ha-config:
    x-edgefleet:
      requires:
        peripherals: [zigbee]
        arch: [arm64]
        memory: 1G
    """)


def test_iot_gateway_with_hardware() -> None:
    spec, warnings = parse(IOT_GATEWAY)
    mqtt = spec.services["mqtt"]
    assert mqtt.healthcheck is not None
    assert mqtt.healthcheck.test[3] == "$SYS/#"
    assert (mqtt.healthcheck.interval, mqtt.healthcheck.start_period) == (30, 20)
    zigbee = spec.services["zigbee"]
    assert zigbee.devices == ["/dev/ttyACM0:/dev/ttyACM0"]
    assert zigbee.group_add == ["dialout"]
    assert zigbee.environment["TZ"] == "UTC"
    assert zigbee.depends_on["mqtt"].condition == "service_healthy"
    assert zigbee.stop_grace_period == 30
    ha = spec.services["homeassistant"]
    assert (ha.network_mode, ha.privileged) == ("host", True)
    assert ha.cap_add == ["NET_ADMIN", "NET_RAW"]
    assert spec.requires.peripherals == ["zigbee"]
    assert spec.requires.memory == 1 << 30
    assert [(f.key, f.line) for f in warnings] == [
        ("services.homeassistant.network_mode", 28),
        ("services.homeassistant.privileged", 29),
        ("services.homeassistant.volumes[0]", 31),
    ]
    # At deploy time the job's environment fills the variables.
    spec, _ = parse(IOT_GATEWAY, environment={"TZ": "Europe/Paris"})
    assert spec.services["zigbee"].environment["TZ"] == "Europe/Paris"


ODD_VALUES: list[object] = [None, 0, -1, True, "", "x", [], {}, [None], {"a": None}, [[1]], 1.5]


@pytest.mark.parametrize("key", sorted(KNOWN_KEYS))
def test_odd_values_never_crash(key: str) -> None:
    for value in ODD_VALUES:
        source = {"services": {"a": {"image": "i", key: value}, "b": {"image": "b"}}}
        for environment in (None, {"X": "1"}):
            for finding in validate(source, environment=environment):
                assert finding.key.startswith(("services.a", "services.b")), finding
