#!/usr/bin/python3
# A small registry token server for tests (the distribution spec's Bearer token flow), with
# only Python's standard library and the openssl command. docker-registry's `auth.token` trusts
# the certificate given here; a token is a JWT signed RS256 with its key, the certificate in
# the header's x5c.
#
#   token_server.py PORT KEY CERT SERVICE ISSUER USER PASSWORD
#
# GET /token?service=S&scope=repository:NAME:ACTIONS answers {"token": ...}: with HTTP Basic
# USER:PASSWORD, the actions asked for; anonymous, a token that grants nothing (the registry
# then refuses); a wrong password, 401. Each request is logged to stdout as one line:
# "token <user or -> <scope>".
import base64
import json
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, key, cert, service, issuer, user, password = sys.argv[1:8]
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True, capture_output=True).stdout


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(), check=True,
                         capture_output=True).stdout
    return signing_input + "." + b64url(sig)


class handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            self.send_error(404)
            return
        q = urllib.parse.parse_qs(url.query)
        who = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            given = base64.b64decode(auth[6:]).decode(errors="replace")
            if given != user + ":" + password:
                print("token refused", flush=True)
                self.send_response(401)
                self.end_headers()
                return
            who = user
        access = []
        for scope in q.get("scope", []):
            parts = scope.split(":")
            if len(parts) == 3 and parts[0] == "repository" and who:
                access.append({"type": "repository", "name": parts[1], "actions": parts[2].split(",")})
            print("token", who or "-", scope, flush=True)
        now = int(time.time())
        token = sign({"iss": issuer, "sub": who or "", "aud": q.get("service", [service])[0], "exp": now + 600,
                      "nbf": now - 10, "iat": now, "jti": str(now) + str(id(self)), "access": access})
        body = json.dumps({"token": token, "expires_in": 600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(port)), handler).serve_forever()
