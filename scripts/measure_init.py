"""Measure a function's init: from process start to its first `GET /runtime/invocation/next` (the moment the
Lambda service would consider it ready), against a fake Runtime API on loopback.

Usage: measure_init.py BINARY [RUNS]   e.g. measure_init.py target/lambda/acquiring-callback/bootstrap 30
"""

import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

arrived = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        if self.path.endswith("/runtime/invocation/next"):
            arrived.set()
            time.sleep(0.5)  # hold the poll; the process is killed meanwhile
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(
        os.environ,
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_port}",
        AWS_LAMBDA_FUNCTION_NAME="measure",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        AWS_LAMBDA_FUNCTION_VERSION="1",
        AWS_LAMBDA_LOG_STREAM_NAME="s",
        AWS_LAMBDA_LOG_GROUP_NAME="g",
        AWS_REGION="eu-central-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        LEDGER_TABLE="paysync-ledger",
        EVENTS_QUEUE_URL="https://sqs.eu-central-1.amazonaws.com/123456789012/paysync-events.fifo",
        TBANK_TERMINAL_KEY="1321054611234DEMO",
        TBANK_PASSWORD="Dfsfh56dgKl",
        SBER_CALLBACK_TOKEN="ooc7slpvc61k7sf7ma7p4hrefr",
        YOOKASSA_SHOP_ID="1",
        YOOKASSA_SECRET_KEY="k",
        EXCHANGE_1C_USER="1c",
        EXCHANGE_1C_PASSWORD="pw",
        BITRIX_WEBHOOK_URL="https://shop.example/rest/1/webhookcode/",
        REFUNDS_QUEUE_URL="https://sqs.eu-central-1.amazonaws.com/123456789012/paysync-refunds.fifo",
        RUST_LOG="warn",
    )
    samples = []
    for _ in range(runs):
        arrived.clear()
        start = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not arrived.wait(10):
            proc.kill()
            sys.exit(f"{binary} never polled the Runtime API")
        samples.append((time.perf_counter() - start) * 1000)
        proc.kill()
        proc.wait()
    samples.sort()
    print(f"{binary}: init p50 {statistics.median(samples):.1f} ms, p90 {samples[int(len(samples) * 0.9) - 1]:.1f} ms, "
          f"min {samples[0]:.1f} ms over {runs} runs")


if __name__ == "__main__":
    main()
