"""spore's python3 example: unmodified AWS Lambda handlers, handler(event, context).

Deploy with handler "handler.hello" (or handler.echo, ...). Handlers:
  hello    {"name": N} -> {"message": "hello, N", "function_version", "request_id"}
  echo     returns the event
  noop     returns None (null)
  fail     raises ValueError
  sleep    {"seconds": S} sleeps S seconds
  crash    {"how": "segv"|"exit", "code": N} ends the instance (segv: a real fault)
  log      {"lines": N} prints N lines to stdout and to stderr
  context  returns the context's attributes and the function's environment
"""
import os
import signal
import sys
import time


def hello(event, context):
    name = "world"
    if isinstance(event, dict):
        name = event.get("name", "world")
    return {
        "message": "hello, %s" % name,
        "function_version": context.function_version,
        "request_id": context.aws_request_id,
    }


def echo(event, context):
    return event


def noop(event, context):
    return None


def fail(event, context):
    raise ValueError("something went wrong")


def sleep(event, context):
    seconds = float((event or {}).get("seconds", 1))
    time.sleep(seconds)
    return {"slept": seconds}


def crash(event, context):
    event = event or {}
    how = event.get("how", "segv")
    sys.stdout.flush()
    if how == "exit":
        os._exit(int(event.get("code", 3)))
    # A real fault: a sandboxed instance is PID 1 of its pid namespace, and the kernel ignores
    # signals that PID 1 sends itself (kill, raise), but not the SIGSEGV of a bad access.
    import ctypes
    ctypes.string_at(0)


def log(event, context):
    lines = int((event or {}).get("lines", 2))
    for i in range(lines):
        print("stdout line %d of %s" % (i, context.aws_request_id))
        print("stderr line %d of %s" % (i, context.aws_request_id), file=sys.stderr)
    return {"lines": lines}


def context(event, context):
    keys = (event or {}).get("env", [])
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "identity": context.identity,
        "client_context": context.client_context,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "cwd": os.getcwd(),
        "env": {k: os.environ.get(k) for k in keys},
        "ppid": os.getppid(),
        "pid": os.getpid(),
    }
