"""A local Lambda sandbox: Runtime, Extensions and Telemetry APIs on 127.0.0.1.

It launches the extensions of an unpacked layer, runs a real Python function with AWS's
runtime client (awslambdaric), freezes the processes between invokes with SIGSTOP, and ends
with a SHUTDOWN that has a deadline and a SIGKILL. It is a development and test tool and is
not part of the layer.
"""
