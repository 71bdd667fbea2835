#!/usr/bin/env python3
"""A small AWS stand-in on 127.0.0.1 for fault tests: canned CloudFormation and STS answers, or a
forward to a real endpoint (LocalStack), with faults injected.

    python3 tools/fault_proxy.py --fault hang          # accepts connections, never answers
    python3 tools/fault_proxy.py --fault plain         # a plain web server (200, text/html)
    python3 tools/fault_proxy.py --upstream http://127.0.0.1:4566 --throttle DescribeStackEvents=3

The tests start it in-process (``FaultProxy`` is a context manager) and point ``scrybe-kms deploy``
at ``endpoint``. The canned CloudFormation knows one existing stack (``Scenario``) well enough for
an update: describe it, read its template, create and describe a change set, execute it and
report events; ``Scenario.change_set_pending`` keeps the change set pending forever and
``Scenario.stuck`` keeps the update in progress forever, so a test can interrupt either phase.
Only the query protocol (STS, CloudFormation) is canned; it binds loopback only.
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

__all__ = ["FaultProxy", "Scenario"]

STACK_ID = "arn:aws:cloudformation:us-west-2:{account}:stack/{stack}/1"


@dataclass
class Scenario:
    """The one stack the canned CloudFormation holds, and how its update goes."""

    account: str = "123456789012"
    stack: str = "scrybe-kms-production"
    status: str = "UPDATE_COMPLETE"
    template: str = "{}"
    outputs: dict[str, str] = field(default_factory=dict)
    change_set_pending: bool = False
    stuck: bool = True
    #: Actions seen, in order (``Action=`` of each request).
    seen: list[str] = field(default_factory=list)

    def answer(self, action: str, params: dict[str, str]) -> tuple[int, str]:
        handler = getattr(self, f"_{action}", None)
        if handler is None:
            return 400, _error("InvalidAction", f"{action} is not canned here")
        return 200, _result(action, handler(params))

    def _GetCallerIdentity(self, params: dict[str, str]) -> str:
        return f"<Account>{self.account}</Account><Arn>arn:aws:iam::{self.account}:user/t</Arn><UserId>t</UserId>"

    def _DescribeStacks(self, params: dict[str, str]) -> str:
        outputs = "".join(f"<member><OutputKey>{k}</OutputKey><OutputValue>{escape(v)}</OutputValue></member>"
                          for k, v in self.outputs.items())
        return (f"<Stacks><member><StackName>{self.stack}</StackName><StackId>{self._id()}</StackId>"
                f"<CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>{self.status}</StackStatus>"
                f"<Outputs>{outputs}</Outputs><EnableTerminationProtection>true</EnableTerminationProtection>"
                "</member></Stacks>")

    def _GetTemplate(self, params: dict[str, str]) -> str:
        return f"<TemplateBody>{escape(self.template)}</TemplateBody>"

    def _CreateChangeSet(self, params: dict[str, str]) -> str:
        return f"<Id>arn:aws:cloudformation:us-west-2:{self.account}:changeSet/{params['ChangeSetName']}/1</Id>"

    def _DescribeChangeSet(self, params: dict[str, str]) -> str:
        if self.change_set_pending:
            return "<Status>CREATE_PENDING</Status><ExecutionStatus>UNAVAILABLE</ExecutionStatus>"
        return ("<Status>CREATE_COMPLETE</Status><ExecutionStatus>AVAILABLE</ExecutionStatus><Changes><member>"
                "<Type>Resource</Type><ResourceChange><Action>Modify</Action><LogicalResourceId>PhiKey"
                "</LogicalResourceId><ResourceType>AWS::KMS::Key</ResourceType><Replacement>False</Replacement>"
                "</ResourceChange></member></Changes>")

    def _DeleteChangeSet(self, params: dict[str, str]) -> str:
        return ""

    def _SetStackPolicy(self, params: dict[str, str]) -> str:
        return ""

    def _UpdateTerminationProtection(self, params: dict[str, str]) -> str:
        return f"<StackId>{self._id()}</StackId>"

    def _ExecuteChangeSet(self, params: dict[str, str]) -> str:
        self.status = "UPDATE_IN_PROGRESS"
        return ""

    def _DescribeStackEvents(self, params: dict[str, str]) -> str:
        events = [(1, self.stack, "AWS::CloudFormation::Stack", "UPDATE_COMPLETE")]
        if self.status == "UPDATE_IN_PROGRESS":
            events.insert(0, (2, self.stack, "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS"))
            events.insert(0, (3, "PhiKey", "AWS::KMS::Key", "UPDATE_IN_PROGRESS"))
            if not self.stuck:
                self.status = "UPDATE_COMPLETE"
                events.insert(0, (4, self.stack, "AWS::CloudFormation::Stack", "UPDATE_COMPLETE"))
        members = "".join(
            f"<member><StackId>{self._id()}</StackId><EventId>e{n}</EventId><StackName>{self.stack}</StackName>"
            f"<LogicalResourceId>{logical}</LogicalResourceId><ResourceType>{kind}</ResourceType>"
            f"<Timestamp>2026-01-01T00:00:0{n}Z</Timestamp><ResourceStatus>{status}</ResourceStatus></member>"
            for n, logical, kind, status in events)
        return f"<StackEvents>{members}</StackEvents>"

    def _id(self) -> str:
        return STACK_ID.format(account=self.account, stack=self.stack)


def _result(action: str, inner: str) -> str:
    return (f'<{action}Response xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
            f"<{action}Result>{inner}</{action}Result>"
            f"<ResponseMetadata><RequestId>fault-proxy</RequestId></ResponseMetadata></{action}Response>")


def _error(code: str, message: str) -> str:
    return (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message>"
            "</Error><RequestId>fault-proxy</RequestId></ErrorResponse>")


class FaultProxy:
    """An endpoint on 127.0.0.1: ``fault`` is ``""`` (answer), ``"hang"`` or ``"plain"``;
    ``throttle`` maps an action to how many of its first calls get ``Throttling``."""

    def __init__(self, scenario: Scenario | None = None, fault: str = "", upstream: str | None = None,
                 throttle: dict[str, int] | None = None) -> None:
        self.scenario = scenario or Scenario()
        self.fault, self.upstream = fault, upstream
        self.throttle = dict(throttle or {})
        self.stopping = threading.Event()
        self.server: ThreadingHTTPServer | None = None
        self.endpoint = ""

    def __enter__(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                proxy.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        action = params.get("Action") or str(request.headers.get("X-Amz-Target", "")).rsplit(".", 1)[-1]
        self.scenario.seen.append(action)
        if self.fault == "hang":
            self.stopping.wait()
            return
        if self.fault == "plain":
            self.reply(request, 200, "<html><body>It works!</body></html>", "text/html")
        elif self.throttle.get(action, 0) > 0:
            self.throttle[action] -= 1
            self.reply(request, 400, _error("Throttling", "Rate exceeded"))
        elif self.upstream:
            self.forward(request, body)
        else:
            self.reply(request, *self.scenario.answer(action, params))

    def reply(self, request: BaseHTTPRequestHandler, status: int, text: str, kind: str = "text/xml") -> None:
        data = text.encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def forward(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        target = urlparse(self.upstream or "")
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port or 80, timeout=60)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        connection.request(request.command, request.path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        request.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                request.send_header(key, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fault", choices=["", "hang", "plain"], default="")
    parser.add_argument("--upstream", help="forward what is not faulted to this endpoint")
    parser.add_argument("--throttle", action="append", default=[], metavar="ACTION=N")
    args = parser.parse_args()
    throttle = {item.split("=")[0]: int(item.split("=")[1]) for item in args.throttle}
    with FaultProxy(fault=args.fault, upstream=args.upstream, throttle=throttle) as proxy:
        print(f"fault proxy at {proxy.endpoint}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
