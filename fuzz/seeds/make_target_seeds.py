#!/usr/bin/env python3
"""Writes the hand-made seeds of the `digest`, `profile` and `frappe`
targets into fuzz/corpus/<target>/ as `seed-*` files.

* digest: `Authorization` values as CPEs send them (Digest MD5/SHA-256,
  -sess, RFC 2069 without qop, Basic), `WWW-Authenticate` challenges as
  devices send them (one value per line), and edge cases of the auth-param
  syntax and its limits (32 params, 32-byte keys, 4096-byte values).
* profile: the repository's device-profiles/*.toml, copied as they are and
  mutated (each mutation breaks one validation rule, or one TOML rule), plus
  small valid and invalid profiles.
* frappe: what erpnext-sim and real Frappe answer: error bodies (the
  shapes of simulators/erpnext-sim/src/error.rs), HTML pages of proxies and
  maintenance mode, list / document / get_password answers built from the
  demo fixture, and Retry-After values.

Run from anywhere; re-running rewrites the same files with the same bytes.
"""
import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
CORPUS = os.path.join(HERE, "..", "corpus")


def write(target, seeds):
    out = os.path.join(CORPUS, target)
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


# --------------------------------------------------------------- digest
def digest_seeds():
    s = {}
    ha1 = md5("cpe:gigafibre-acs:s3cret")
    ha2 = md5("POST:/")
    nonce = "AAAAAGkB0QBx3hF0m0SZ6Q7q2wW8bA9L8x1nKZ0zYw"
    resp = md5(f"{ha1}:{nonce}:00000001:abcd:auth:{ha2}")
    s["seed-authz-md5-qop"] = (
        f'Digest username="cpe", realm="gigafibre-acs", nonce="{nonce}", uri="/", '
        f'algorithm=MD5, qop=auth, nc=00000001, cnonce="abcd", response="{resp}"'
    )
    s["seed-authz-sha256-sess"] = (
        f'Digest username="RCMG1A2B3C4D", realm="gigafibre-acs", nonce="{nonce}", '
        f'uri="http://acs.example:7547/", algorithm=SHA-256-sess, qop="auth", '
        f'nc=0000000a, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", '
        f'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", '
        f'opaque="0011223344556677"'
    )
    s["seed-authz-rfc2069"] = (
        f'Digest username="cpe",realm="gigafibre-acs",nonce="{nonce}",uri="/acs",'
        f'response="{md5(ha1 + ":" + nonce + ":" + ha2)}"'
    )
    s["seed-authz-escapes"] = (
        'digest USERNAME="a\\"b\\\\c", Realm="r, x", nonce=n, uri="/", response="R", '
        'qop=auth, nc=1, cnonce="c"'
    )
    s["seed-authz-missing-cnonce"] = (
        'Digest username="a", realm="b", nonce="c", uri="/", response="d", qop=auth'
    )
    s["seed-authz-basic-ok"] = "Basic Y3BlOnMzY3JldA=="
    s["seed-authz-basic-bad-b64"] = "Basic !!!"
    s["seed-authz-basic-no-colon"] = "Basic Y3Bl"
    s["seed-authz-bearer"] = "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"
    s["seed-challenges-mixed"] = (
        'Basic realm="x"\n'
        'Digest realm="cpe", nonce="n1", qop="auth,auth-int", algorithm=MD5\n'
        'Digest realm="cpe", nonce="n2", qop="auth", algorithm=SHA-256'
    )
    s["seed-challenge-tplink"] = (
        'Digest realm="TP-LINK", qop="auth", nonce="5f1e0c2a3b", opaque="c0ffee"'
    )
    s["seed-challenge-huawei"] = (
        'Digest realm="HuaweiHomeGateway",nonce="8a9c1f0e4b2d", qop="auth", '
        'algorithm="MD5-sess", stale=false'
    )
    s["seed-challenge-stale"] = (
        'Digest realm="cpe-sim", qop="auth", nonce="abc", opaque="op", stale=true'
    )
    s["seed-challenge-auth-int"] = 'Digest realm="x", nonce="n", qop="auth-int"'
    s["seed-challenge-bad-alg"] = 'Digest realm="x", nonce="n", algorithm=SHA-512-256'
    s["seed-challenge-negotiate"] = "Negotiate abc\nNTLM\nDigestive realm=x"
    s["seed-challenge-no-nonce"] = 'Digest realm="x"'
    s["seed-challenge-empty-lines"] = "\n\n"
    s["seed-params-unterminated"] = 'realm="unterminated'
    s["seed-params-backslash-end"] = 'realm="abc\\'
    s["seed-params-no-comma"] = 'a="b" c=d'
    s["seed-params-empty-values"] = "a=,b=, c= ,d=\"\""
    s["seed-params-no-eq"] = "garbage"
    s["seed-params-unicode-ws"] = "\u00a0a\u2003=\u3000\"\u00e9t\u00e9\"\u2028,\u0085b=c\u00a0"
    s["seed-params-32"] = ", ".join(f"k{i}=v{i}" for i in range(32))
    s["seed-params-33"] = ", ".join(f"k{i}=v{i}" for i in range(33))
    s["seed-params-key-32"] = "k" * 32 + "=v"
    s["seed-params-key-33"] = "k" * 33 + "=v"
    s["seed-params-value-4096"] = 'realm="' + "v" * 4096 + '", nonce=n'
    s["seed-params-value-4097"] = 'realm="' + "v" * 4097 + '", nonce=n'
    s["seed-params-quote-in-key"] = '"k"=v, a,b=c'
    s["seed-invalid-utf8"] = b'Digest realm="\xff\xfe", nonce="\xc3"'
    return s


# --------------------------------------------------------------- profile
def profile_seeds():
    s = {}
    pdir = os.path.join(ROOT, "device-profiles")
    texts = {}
    for f in sorted(os.listdir(pdir)):
        if f.endswith(".toml"):
            texts[f[: -len(".toml")]] = open(os.path.join(pdir, f), encoding="utf-8").read()
    for name, t in texts.items():
        s[f"seed-{name}"] = t
    deco = texts["tplink-deco"]
    rcmg = texts["raisecom-rcmg-ont"]
    mutations = {
        "root-bad": (deco, 'root = "Device."', 'root = "Device"'),
        "root-igd-paths-device": (deco, 'root = "Device."', 'root = "InternetGatewayDevice."'),
        "name-blank": (deco, 'name = "tplink-deco"', 'name = "  "'),
        "band-bad": (deco, 'band = "5"', 'band = "5GHz"'),
        "band-twice": (deco, 'band = "5"', 'band = "2.4"'),
        "path-space": (deco, '"Device.Hosts.Host."', '"Device.Hosts. Host."'),
        "path-dotdot": (deco, '"Device.Hosts.Host."', '"Device..Hosts.Host."'),
        "never-write-ssid": (deco, '"Device.WiFi.SSID.9."', '"Device.WiFi.SSID.1."'),
        "match-blank": (deco, '"Deco*"', '" "'),
        "unknown-key": (deco, "priority = 100", "priority = 100\nbogus = 1"),
        "priority-text": (deco, "priority = 100", 'priority = "high"'),
        "priority-huge": (deco, "priority = 100", "priority = 99999999999999999999"),
        "signal-unit-bad": (deco, 'associated_signal_unit = "dbm"', 'associated_signal_unit = "mW"'),
        "booleans-numeric": (deco, 'booleans = "true-false"', 'booleans = "numeric"'),
        "booleans-bad": (deco, 'booleans = "true-false"', 'booleans = "yes-no"'),
        "dup-table": (deco, "[identity]", "[identity]\n[identity]"),
        "dup-key": (deco, "priority = 100", "priority = 100\npriority = 1"),
    }
    for tag, (base, old, new) in mutations.items():
        assert old in base, tag
        s[f"seed-mut-{tag}"] = base.replace(old, new, 1)
    sip_mut = {
        "sip-no-line": ("{line}", "1", 1),
        "sip-enable-alone": ('line_enable_value = "Enabled"\n', "", 1),
    }
    for tag, (old, new, n) in sip_mut.items():
        if old in rcmg:
            s[f"seed-mut-{tag}"] = rcmg.replace(old, new, n)
    s["seed-mut-unit-bad"] = rcmg.replace('"0.1uW"', '"uW"', 1)
    s["seed-mut-truncated-deco"] = deco[: len(deco) // 2]
    s["seed-mut-truncated-rcmg"] = rcmg[: len(rcmg) * 2 // 3]
    s["seed-minimal"] = 'name = "x"\nroot = "Device."\n'
    s["seed-minimal-igd"] = 'name = "x"\nroot = "InternetGatewayDevice."\n'
    s["seed-empty"] = ""
    s["seed-no-root"] = 'name = "x"\n'
    s["seed-inline-tables"] = (
        'name = "i"\nroot = "Device."\nmatch = { oui = ["1C61B4", "*B4"], model_name = ["*"] }\n'
        'identity = { mac = ["Device.X.MACAddress"] }\n'
        'wifi = [ { band = "6", ssid = "Device.WiFi.SSID.5.SSID", '
        'passphrase = "Device.WiFi.AccessPoint.5.Security.KeyPassphrase" } ]\n'
        'optical = { rx_power = "Device.Optical.Interface.1.Stats.RX", '
        'tx_power = "Device.Optical.Interface.1.Stats.TX", unit = "0.001dBm" }\n'
    )
    s["seed-strings"] = (
        "name = '''multi\nline'''\nroot = \"Dev\\u0069ce.\"\n"
        'description = """\\\n  folded \\t text"""\n'
        "[sip]\nauth_username = 'Device.Services.VoiceService.1.VoiceProfile.1.Line.{line}.SIP.AuthUserName'\n"
        "auth_password = \"Device.Services.VoiceService.1.VoiceProfile.1.Line.{line}.SIP.AuthPassword\"\n"
        'line_enable = "Device.Services.VoiceService.1.VoiceProfile.1.Line.{line}.Enable"\n'
        'line_enable_value = "Enabled"\n'
    )
    s["seed-dotted-keys"] = (
        'name = "d"\nroot = "Device."\nmatch.manufacturer = ["A*B*C"]\n'
        'topology.wan_ip = ["Device.IP.Interface.*.IPv4Address.*.IPAddress"]\n'
    )
    return s


# --------------------------------------------------------------- frappe
def compact(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def msg(message, title="Message", indicator="red", thrown=True):
    d = {"message": message, "title": title}
    if indicator:
        d["indicator"] = indicator
    if thrown:
        d["raise_exception"] = 1
        d["__frappe_exc_id"] = "3f" * 28
    return compact(d)


def error_body(exc_type, messages=(), exception=None, error_message=None, module="frappe.exceptions"):
    kv = {}
    if exception is not None:
        line = f"{module}.{exc_type}: {exception}" if exception else f"{module}.{exc_type}"
        kv["exception"] = line
    kv["exc_type"] = exc_type
    if exception is not None:
        tb = ("Traceback (most recent call last):\n  File \"apps/frappe/frappe/app.py\", "
              f"line 115, in application\n    response = frappe.api.handle(request)\n{kv['exception']}\n")
        kv["exc"] = compact([tb])
    if messages:
        kv["_server_messages"] = compact(list(messages))
    if error_message:
        kv["_error_message"] = error_message
    return compact(kv)


FIELDS = [
    "name", "customer", "service_location", "equipment_type", "brand", "model",
    "serial_number", "mac_address", "status", "custom_wifi_ssid", "custom_wifi_ssid_5g",
    "custom_wifi_enabled", "custom_wifi_password", "custom_sip_username",
    "custom_sip_password", "custom_sip_line", "custom_gpon_serial", "custom_cwmp_serial",
    "modified",
]


def row(doc):
    r = {}
    for f in FIELDS:
        v = doc.get(f)
        if f in ("custom_wifi_password", "custom_sip_password") and v:
            v = "*" * len(v)
        r[f] = v
    return r


def frappe_seeds():
    s = {}
    v = "Status cannot be \"Installé\". It should be one of \"En inventaire\", \"Actif\""
    s["seed-err-validation"] = error_body("ValidationError", [msg(v)], exception=v)
    s["seed-err-not-found"] = error_body(
        "DoesNotExistError", [msg("Service Equipment EQ-00099 not found")])
    s["seed-err-auth-bare"] = error_body("AuthenticationError")
    s["seed-err-bad-token"] = error_body(
        "InvalidAuthorizationToken",
        [msg("Failed to decode token, please provide a valid base64-encoded token.")])
    s["seed-err-guest-permission"] = error_body(
        "PermissionError",
        [msg("User <strong>Guest</strong> does not have doctype access via role permission "
             "for document <strong>Service Equipment</strong>", indicator=None, thrown=False)],
        error_message="No permission for Service Equipment")
    s["seed-err-guest-method"] = error_body(
        "PermissionError",
        [msg("<details><summary>You are not permitted to access this resource.</summary>"
             "Function <strong>frappe.client.get_password</strong> is not whitelisted.</details>",
             title="Method Not Allowed")])
    s["seed-err-duplicate"] = error_body(
        "DuplicateEntryError",
        [msg("Service Equipment <strong>EQ-00012</strong> already exists",
             title="Duplicate Name", thrown=False)],
        exception="('Service Equipment', 'EQ-00012', IntegrityError(1062, "
                  "\"Duplicate entry 'EQ-00012' for key 'PRIMARY'\"))")
    s["seed-err-mandatory"] = error_body(
        "MandatoryError",
        [msg("Error: Value missing for Service Equipment: Customer", indicator=None, thrown=False),
         msg("Error: Value missing for Service Equipment: Status", indicator=None, thrown=False)],
        exception="[Service Equipment, EQ-1]: customer, status")
    s["seed-err-password-not-found"] = error_body(
        "AuthenticationError",
        [msg("Password not found for Service Equipment EQ-00042 custom_sip_password")],
        exception="Password not found for Service Equipment EQ-00042 custom_sip_password")
    s["seed-err-db"] = error_body(
        "OperationalError", exception="(2013, 'Lost connection to MySQL server during query')",
        module="pymysql.err")
    s["seed-err-rate-limit"] = error_body("TooManyRequestsError")
    s["seed-err-entities"] = error_body(
        "ValidationError",
        [msg("Second&nbsp;line<br>with &amp; entity &lt;b&gt; &quot;q&quot; &#39;s&#x27;")])
    s["seed-err-old-style-messages"] = compact(
        {"_server_messages": compact(["just text", {"message": "an object"}, {"message": 42},
                                      {"message": None}, 7, "{\"message\": [1, 2]}"])})
    s["seed-err-plain-server-messages"] = compact({"_server_messages": "plain words"})
    s["seed-err-message-key"] = compact({"message": "Not permitted", "exc_type": ""})
    s["seed-err-long"] = error_body("ValidationError", [msg("é" * 400)] * 3, exception="x " * 400)
    s["seed-html-502"] = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n"
        "</body>\r\n</html>\r\n")
    s["seed-html-maintenance"] = (
        "<!DOCTYPE html>\n<html><head><title>Updating</title><style>p{x:1}</style></head><body>"
        "<h1>Updating</h1><p>The system is being updated. Please refresh again after a few "
        "moments.</p><script>var a = '<b>';</script></body></html>\n")
    s["seed-html-title-only"] = "<html><head><title>Oops</title></head><body></body></html>"
    s["seed-html-405"] = (
        "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n"
        "<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n")
    s["seed-html-unclosed-script"] = "<p>a</p><script >never closed <style\t"
    s["seed-invalid-utf8"] = b"\xff\xfe<p>\xc3(</p>"
    s["seed-empty"] = ""
    s["seed-json-array"] = "[1,2]"

    fixture = json.load(open(os.path.join(ROOT, "simulators", "erpnext-sim", "fixtures", "demo.json"),
                             encoding="utf-8"))
    eqs = fixture["Service Equipment"]
    s["seed-list-3"] = compact({"data": [row(d) for d in eqs[:3]]})
    s["seed-list-empty"] = compact({"data": []})
    s["seed-list-with-messages"] = compact(
        {"data": [row(eqs[3])], "_server_messages": compact([msg("Filters ignored", thrown=False)])})
    s["seed-list-odd-types"] = compact({"data": [
        {"name": 42, "custom_wifi_enabled": "1", "custom_sip_line": 2.0, "status": " "},
        {"name": "EQ-x", "custom_wifi_enabled": True, "custom_sip_line": -1,
         "custom_wifi_password": "", "mac_address": None, "brand": ["TP-Link"]},
        {"name": "EQ-y", "custom_sip_line": 4294967296, "custom_wifi_enabled": 1e300},
    ]})
    s["seed-list-bad-row"] = compact({"data": [row(eqs[0]), "EQ-00002"]})
    s["seed-list-no-name"] = compact({"data": [{"customer": "x" * 200}]})
    s["seed-list-not-list"] = compact({"data": {"name": "EQ-1"}})
    doc = dict(eqs[1])
    doc.update({"doctype": "Service Equipment", "docstatus": 0, "idx": 0, "owner": "Administrator",
                "modified_by": "Administrator", "custom_wifi_password": "*" * 12})
    s["seed-doc"] = compact({"data": doc})
    s["seed-doc-no-data"] = compact({"message": "ok"})
    s["seed-doc-null"] = compact({"data": None})
    s["seed-password"] = compact({"message": "uYzRb5UYS9rD"})
    s["seed-password-null"] = compact({"message": None})
    s["seed-password-empty"] = compact({"message": ""})
    s["seed-password-number"] = compact({"message": 12345678901234567890})
    s["seed-password-list"] = compact({"message": ["a"]})
    s["seed-retry-after-7"] = "7"
    s["seed-retry-after-spaces"] = " 120 "
    s["seed-retry-after-huge"] = "99999999999999999999999"
    s["seed-retry-after-date"] = "Wed, 21 Oct 2015 07:28:00 GMT"
    s["seed-retry-after-negative"] = "-1"
    return s


if __name__ == "__main__":
    write("digest", digest_seeds())
    write("profile", profile_seeds())
    write("frappe", frappe_seeds())
