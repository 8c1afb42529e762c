"""Object stores for uploaded files: a directory (default) or S3-compatible."""

from edgefleet.server.data.objects.base import ObjectStore, ObjectStoreError, open_store

__all__ = ["ObjectStore", "ObjectStoreError", "open_store"]
