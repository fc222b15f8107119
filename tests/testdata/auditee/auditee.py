# An unknown program to audit: it resolves names through the system
# resolver, makes HTTPS requests to two hosts, sends UDP to a port, opens a
# raw ICMP socket and a packet socket, asks a DNS server of its own choosing (a mixed-case
# label: base64 of a payload) and forks a child that connects. It prints
# its pids and what each attempt gave, never a secret.
#
# usage: python3 auditee.py HOST_ADDRESS
import os
import socket
import struct
import sys
import urllib.error
import urllib.request

host = sys.argv[1]
print("parent", os.getpid(), os.getppid(), flush=True)


def attempt(what, f):
    try:
        print(what, f(), flush=True)
    except urllib.error.HTTPError as e:
        print(what, "http", e.code, flush=True)
    except OSError as e:
        print(what, "error", e.errno, flush=True)


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status


def udp_send():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return s.sendto(b"ping", (host, 9999))


def raw_icmp():
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
    return "opened"


def packet_socket():
    # A family the jail's seccomp filter refuses.
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    return "opened"


def dns_query(name):
    # A query by hand to HOST:53, as a program with its own resolver does.
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(q, (host, 53))
    answer, _ = s.recvfrom(512)
    return "answered %d bytes" % len(answer)


attempt("resolve", lambda: socket.getaddrinfo("allowed.test", 443)[0][4][0])
attempt("https-allowed", lambda: get("https://allowed.test/audit"))
attempt("https-denied", lambda: get("https://denied.test/audit"))
attempt("udp", udp_send)
attempt("raw", raw_icmp)
attempt("packet", packet_socket)
attempt("dns", lambda: dns_query("c2VjcmV0.Exfil.test"))

pid = os.fork()
if pid == 0:
    print("child", os.getpid(), os.getppid(), flush=True)
    attempt("child-http", lambda: get("http://allowed.test/child"))
    os._exit(0)
os.waitpid(pid, 0)
