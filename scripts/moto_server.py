"""moto server for paysync's local stack and tests, serving one request at a time.

moto's own `moto_server` is threaded, and its TransactWriteItems restores a deep copy of the whole table when a
transaction is cancelled: under concurrency that erases writes other clients committed meanwhile. Serialising
requests gives the per-request atomicity real DynamoDB has.

Usage: moto_server.py PORTFILE   (binds 127.0.0.1 on a free port and writes the port number to PORTFILE)
"""

import os
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


def main() -> None:
    port_file = sys.argv[1]
    port = int(os.environ.get("MOTO_FIXED_PORT", "0"))
    server = make_server(
        "127.0.0.1",
        port,
        DomainDispatcherApplication(create_backend_app),
        threaded=False,
        request_handler=MotoRequestHandler,
    )
    os.environ["MOTO_PORT"] = str(server.server_port)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_port))
    os.replace(tmp, port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
