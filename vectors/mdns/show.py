"""Prints the recorded datagrams as a timeline, and checks that they decode.

    target/mdns-vectors-venv/bin/python vectors/mdns/show.py vectors/mdns/*.json [--records]

Every datagram is read twice: by dnswire.py (this directory) and by python-zeroconf's own
parser (DNSIncoming). The check fails if either rejects a datagram, if they disagree on the
number of records, or if the decoded text stored in the file no longer matches the hex.
"""

import json
import sys

import dnswire as dw
from zeroconf import DNSIncoming


def check(entry: dict) -> list[str]:
    data = bytes.fromhex(entry["hex"])
    problems = []
    try:
        mine = dw.decode(data)
    except dw.Malformed as error:
        return [f"dnswire: {error}"]
    if mine != entry["decoded"]:
        problems.append("stored decoding differs from the hex")
    theirs = DNSIncoming(data)
    if not theirs.valid:
        problems.append("zeroconf: invalid")
    if len(theirs.questions) != len(mine["questions"]):
        problems.append(f"zeroconf: {len(theirs.questions)} questions, dnswire {len(mine['questions'])}")
    # zeroconf keeps answers, authorities and additionals in one list.
    ours = len(mine["answers"]) + len(mine["authorities"]) + len(mine["additionals"])
    if len(theirs.answers()) != ours:
        problems.append(f"zeroconf: {len(theirs.answers())} records, dnswire {ours}")
    for record in theirs.answers():
        if record.ttl not in (0, 10, 120, 4500, 1000, 75 * 60):
            problems.append(f"unexpected TTL {record.ttl} on {record.name}")
    return problems


def main() -> int:
    show_records = "--records" in sys.argv
    failures = 0
    for path in [a for a in sys.argv[1:] if not a.startswith("--")]:
        document = json.load(open(path))
        print(f"# {path}: {document['responder']} {document['recorded_with']}")
        for run in document["runs"]:
            print(f"## run {run['run']}")
            for entry in run["packets"]:
                problems = check(entry)
                failures += bool(problems)
                d = entry["decoded"]
                counts = f"q{len(d['questions'])} an{len(d['answers'])} ns{len(d['authorities'])} ar{len(d['additionals'])}"
                print(f"{entry['t_ms']:9.1f} {entry['from']:>22} > {entry['to']:<20} {entry['kind']:<16} id={d['id']:<5} "
                      f"flags={d['flags']} {counts:<16} {entry['label']}" + (f"  !! {problems}" if problems else ""))
                if show_records:
                    for section in ("questions", "answers", "authorities", "additionals"):
                        for line in d[section]:
                            print(f"{'':12}{section[:3]} {line}")
    print(f"{failures} datagram(s) with problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
