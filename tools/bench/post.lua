-- wrk script: POST a small JSON event on keep-alive connections.
wrk.method = "POST"
wrk.body = '{"name": "bench"}'
wrk.headers["Content-Type"] = "application/json"
