"""The HAP-like service both responders publish, and the recording's network (documentation ranges only)."""

SERVICE_TYPE = "_hap._tcp.local"
INSTANCE = "Virtual Light"
HOST_LABEL = "123456789ABC"
HOST = f"{HOST_LABEL}.local"
PORT = 51826
# sh = base64(SHA-512(setup id "7OSX" + device id)[:4]), as HAP computes it.
TXT = [
    ("c#", "1"), ("ff", "0"), ("id", "12:34:56:78:9A:BC"), ("md", "VirtualLight"),
    ("pv", "1.1"), ("s#", "1"), ("sf", "1"), ("ci", "5"), ("sh", "Pb1TTQ=="),
]
# The update: paired (sf 1 -> 0) and the configuration number bumped (c# 1 -> 2).
TXT_UPDATED = [(k, {"c#": "2", "sf": "0"}.get(k, v)) for k, v in TXT]

# The responder's end of the veth pair, and the recorder's.
RESPONDER_IFACE = "mdr0"
RECORDER_IFACE = "mdc0"
V4 = "192.0.2.2"
V6 = "2001:db8::2"
RECORDER_V4 = "192.0.2.1"
RECORDER_V6 = "2001:db8::1"
