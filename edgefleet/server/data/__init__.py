"""Collected data on the server: records, per-stream counters, files.

agent --DataBatch--> ingest.py --INSERT ON CONFLICT DO NOTHING, commit--> DataAck
agent --DataBacklog--> ingest.py --> data_streams (backlog, evictions -> events)
agent --"data-file" stream--> ingest.py --> objects/ (directory or S3) + data_files
GET /jobs/{id}/data[/summary], /jobs/{id}/files --> routes.py --> query.py, export.py
"""
