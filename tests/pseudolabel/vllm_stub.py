"""A small OpenAI-compatible chat-completions server, as vLLM serves one, with scripted faults;
the HTTP tests start it as a real process on 127.0.0.1.

    python vllm_stub.py --log requests.jsonl [--fail-first N] [--slow TEXT SECONDS]
                        [--malformed TEXT] [--truncated TEXT] [--die-after N]

It prints its port on the first line and serves ``GET /v1/models`` (the model list) as vLLM does;
with --die-after it exits, as a crashed server, when the N+1-th request arrives (unanswered). Every request is logged (one JSON line: a hash of the
question (prompt and frames), the status answered, and what the body carried), so a test can count what was asked.
Answers are a fixed labelling JSON; a prompt containing the --malformed / --truncated text gets
prose / cut-off JSON instead (until it is asked again as a re-ask).
"""
import argparse
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--slow", nargs=2, metavar=("TEXT", "SECONDS"))
    p.add_argument("--malformed")
    p.add_argument("--truncated")
    p.add_argument("--die-after", type=int)
    args = p.parse_args()
    lock = threading.Lock()
    served = [0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def _reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.rstrip("/") != "/v1/models":
                self._reply(404, {"error": {"message": "not found", "type": "not_found"}})
                return
            self._reply(200, {"object": "list", "data": [{"id": "stub", "object": "model", "created": 0,
                                                          "owned_by": "stub"}]})

        def do_POST(self):  # noqa: N802 (http.server's name)
            if args.die_after is not None and served[0] >= args.die_after:
                os._exit(0)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            user = body["messages"][-1]["content"]
            prompt = next(c["text"] for c in user if c["type"] == "text")
            videos = [c["video_url"]["url"] for c in user if c["type"] == "video_url"]
            # The question: its text and its frames (tracks share the text of a second).
            record = {"question": hashlib.sha1((prompt + "".join(videos)).encode()).hexdigest(),
                      "max_tokens": body.get("max_tokens"), "response_format": body.get("response_format", {}).get("type"),
                      "video_prefix": videos[0][:23] if videos else None,
                      "frames": len(videos[0].split(",")) - 1 if videos else 0,
                      "media": body.get("media_io_kwargs"), "reask": "could not be read" in prompt}
            # Counting and logging under one lock keeps the log in the order the statuses were given
            # (with two in flight, a later 200 could otherwise be logged before an earlier 503).
            with lock, open(args.log, "a") as fh:
                served[0] += 1
                status = record["status"] = 503 if served[0] <= args.fail_first else 200
                fh.write(json.dumps(record) + "\n")
            if args.slow and args.slow[0] in prompt:
                time.sleep(float(args.slow[1]))
            if status != 200:
                self._reply(status, {"error": {"message": "the model is loading", "type": "server_error"}})
                return
            text = json.dumps({"actions": [{"action": "walking", "confidence": 0.7}, {"action": "running", "confidence": 0.3}]})
            if not record["reask"] and args.malformed and args.malformed in prompt:
                text = "The person seems to be walking around."
            if not record["reask"] and args.truncated and args.truncated in prompt:
                text = text[:25]
            self._reply(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                              "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": text}}],
                              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
