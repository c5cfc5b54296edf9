#!/usr/bin/env python3
"""Writes the hand-made edge-case seeds into fuzz/corpus/envelope/ (and the
hand-made regression inputs into fuzz/regressions/envelope/).

Seeds are named `seed-*` so they can be told apart from the inputs the
fuzzer found (named by content hash). Run from anywhere; re-running
rewrites the same files with the same bytes.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "corpus", "envelope")

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
ENC = "http://schemas.xmlsoap.org/soap/encoding/"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def env(body, header="", cwmp="1-2"):
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP}" xmlns:SOAP-ENC="{ENC}" '
        f'xmlns:xsd="{XSD}" xmlns:xsi="{XSI}" xmlns:cwmp="urn:dslforum-org:cwmp-{cwmp}">'
        + (f"<SOAP-ENV:Header>{header}</SOAP-ENV:Header>" if header else "")
        + f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )


seeds = {}
seeds["seed-empty"] = b""
seeds["seed-lone-lt"] = b"<"
seeds["seed-whitespace"] = b" \r\n\t "
seeds["seed-xml-decl-only"] = b'<?xml version="1.0"?>'
seeds["seed-comment-only"] = b"<!-- nothing -->"
seeds["seed-bom-utf16le"] = b"\xff\xfe<\x00a\x00/\x00>\x00"
seeds["seed-deep-100-plain"] = ("<a>" * 100 + "x" + "</a>" * 100).encode()
seeds["seed-deep-100-in-body"] = env(
    "<cwmp:Inform>" + "<d>" * 100 + "</d>" * 100 + "</cwmp:Inform>"
).encode()
# Envelope/Body/message plus children up to the depth limit (48) and one past it.
seeds["seed-deep-48-boundary"] = env("<cwmp:Unknown>" + "<d>" * 45 + "</d>" * 45 + "</cwmp:Unknown>").encode()
seeds["seed-deep-49-boundary"] = env("<cwmp:Unknown>" + "<d>" * 46 + "</d>" * 46 + "</cwmp:Unknown>").encode()
seeds["seed-gpvr-2000-empty-pvs"] = env(
    '<cwmp:GetParameterValuesResponse><ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[2000]">'
    + "<ParameterValueStruct/>" * 2000
    + "</ParameterList></cwmp:GetParameterValuesResponse>"
).encode()
seeds["seed-gpvr-2000-short-pvs"] = env(
    '<cwmp:GetParameterValuesResponse><ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[1]">'
    + "".join(f"<p><Name>{i}</Name></p>" for i in range(2000))
    + "</ParameterList></cwmp:GetParameterValuesResponse>"
).encode()
seeds["seed-spv-typed-values"] = env(
    '<cwmp:SetParameterValues><ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[6]">'
    '<ParameterValueStruct><Name>A.s</Name><Value xsi:type="xsd:string"> sp&amp;ce </Value></ParameterValueStruct>'
    '<ParameterValueStruct><Name>A.u</Name><Value xsi:type="xsd:unsignedInt"> 7 </Value></ParameterValueStruct>'
    '<ParameterValueStruct><Name>A.b</Name><Value xsi:type="SOAP-ENC:base64">QUJD</Value></ParameterValueStruct>'
    '<ParameterValueStruct><Name>A.d</Name><Value xsi:type="xsd:dateTime">2024-05-01T12:00:00Z</Value></ParameterValueStruct>'
    '<ParameterValueStruct><Name>A.o</Name><Value xsi:type="tr106:IPAddress">10.0.0.1</Value></ParameterValueStruct>'
    '<ParameterValueStruct><Name>A.x</Name><Value xsi:type="">cr&#13;lf&#10;tab&#9;</Value></ParameterValueStruct>'
    "</ParameterList><ParameterKey>k1</ParameterKey></cwmp:SetParameterValues>"
).encode()
seeds["seed-all-headers"] = env(
    "<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>",
    header='<cwmp:ID SOAP-ENV:mustUnderstand="1"> id-1 </cwmp:ID>'
    "<cwmp:HoldRequests>true</cwmp:HoldRequests><cwmp:NoMoreRequests>0</cwmp:NoMoreRequests>"
    "<cwmp:SessionTimeout>30</cwmp:SessionTimeout>"
    "<cwmp:SupportedCWMPVersions>1.0,1.1,1.2,1.3,1.4</cwmp:SupportedCWMPVersions>"
    "<cwmp:UseCWMPVersion>1.4</cwmp:UseCWMPVersion>",
    cwmp="1-4",
).encode()
seeds["seed-fault-spv-detail"] = env(
    "<SOAP-ENV:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>"
    "<detail><cwmp:Fault><FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString>"
    "<SetParameterValuesFault><ParameterName>A.b</ParameterName><FaultCode>9007</FaultCode>"
    "<FaultString>bad</FaultString></SetParameterValuesFault></cwmp:Fault></detail></SOAP-ENV:Fault>",
    cwmp="1-1",
).encode()
seeds["seed-bare-soap-fault"] = env(
    "<SOAP-ENV:Fault><faultcode>Server</faultcode><faultstring>oops</faultstring></SOAP-ENV:Fault>"
).encode()
seeds["seed-latin1-decl"] = (
    b'<?xml version="1.0" encoding="ISO-8859-1"?><s:Envelope xmlns:s="' + SOAP.encode()
    + b'" xmlns:c="urn:dslforum-org:cwmp-1-0"><s:Body><c:Inform><DeviceId><SerialNumber>Caf\xe9'
    b"</SerialNumber></DeviceId></c:Inform></s:Body></s:Envelope>"
)
seeds["seed-bom-utf8-minimal"] = (
    b"\xef\xbb\xbf<Envelope><Body><GetRPCMethods/></Body></Envelope>"
)
seeds["seed-unknown-encoding"] = b'<?xml version="1.0" encoding="EBCDIC"?><a/>'
seeds["seed-invalid-utf8-value"] = (
    b'<Envelope><Body><GetParameterValuesResponse><ParameterList><P><Name>n</Name>'
    b"<Value>\xff\xfe\x80</Value></P></ParameterList></GetParameterValuesResponse></Body></Envelope>"
)
seeds["seed-charrefs-cdata"] = env(
    "<cwmp:GetParameterNames><ParameterPath>a&#x1F600;&lt;&gt;&quot;&apos;<![CDATA[<x>]]></ParameterPath>"
    "<NextLevel>1</NextLevel></cwmp:GetParameterNames>"
).encode()
seeds["seed-unknown-entity"] = env("<cwmp:Reboot><CommandKey>&nbsp;</CommandKey></cwmp:Reboot>").encode()
seeds["seed-doctype"] = b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'
seeds["seed-two-roots"] = b"<Envelope><Body><Reboot/></Body></Envelope><Envelope/>"
seeds["seed-self-closing-envelope"] = b"<Envelope/>"
seeds["seed-no-body"] = env("").replace("<SOAP-ENV:Body></SOAP-ENV:Body>", "").encode()
seeds["seed-soap12"] = (
    b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><Inform/></e:Body></e:Envelope>'
)
seeds["seed-unknown-prefix"] = b"<x:Envelope><x:Body><y:Reboot><CommandKey>k</CommandKey></y:Reboot></x:Body></x:Envelope>"
seeds["seed-default-ns-cwmp"] = (
    b'<Envelope xmlns="' + SOAP.encode() + b'"><Body><Download xmlns="urn:dslforum-org:cwmp-1-3">'
    b"<CommandKey>c</CommandKey><FileType>1 Firmware Upgrade Image</FileType><URL>http://h/f</URL>"
    b"<Username/><Password>p</Password><FileSize>12</FileSize><DelaySeconds>0</DelaySeconds>"
    b"</Download></Body></Envelope>"
)
seeds["seed-transfer-complete"] = env(
    "<cwmp:TransferComplete><CommandKey>k</CommandKey><FaultStruct><FaultCode>0</FaultCode>"
    "<FaultString/></FaultStruct><StartTime>2024-05-01T12:00:00Z</StartTime>"
    "<CompleteTime>0001-01-01T00:00:00Z</CompleteTime></cwmp:TransferComplete>"
).encode()
regressions = {}
# Fixed round-trip bug: control characters were decoded as-is but encoded as
# U+FFFD (the decoder now replaces them too).
regressions["control-chars-to-fffd"] = env(
    "<cwmp:GetParameterValues><ParameterNames><string>a\x01b&#2;c&#xFFFE;</string></ParameterNames></cwmp:GetParameterValues>",
    header="<cwmp:ID>\x7f&#1;</cwmp:ID>",
).encode()
regressions["control-char-ref-in-id"] = (
    b"<Envelope><Header><ID>&#1;</ID></Header><Body><Reboot/></Body></Envelope>"
)
# Fixed round-trip bug: an unknown method's element name was written back through
# the text escaper, inside the tag (`&` became `&amp;`), or broke the XML (`"`).
regressions["unknown-method-name-amp"] = b"<Envelope><Body><a&b/></Body></Envelope>"
regressions["unknown-method-name-quote"] = b'<Envelope><Body><a="b:c"/></Body></Envelope>'
# Fixed round-trip bug: xsi:type was kept raw (entities not decoded) but written
# escaped as text inside a "-quoted attribute.
_gpvr = (
    b"<Envelope><Body><GetParameterValuesResponse><ParameterList><P><Name>n</Name>"
    b"<Value xsi:type=%s>1</Value></P></ParameterList></GetParameterValuesResponse></Body></Envelope>"
)
regressions["xsi-type-entity"] = _gpvr % b'"a&amp;b"'
regressions["xsi-type-quote"] = _gpvr % b"'a\"b'"

REG = os.path.join(HERE, "..", "regressions", "envelope")
for out, files in ((OUT, seeds), (REG, regressions)):
    os.makedirs(out, exist_ok=True)
    for name, data in files.items():
        assert len(data) < 64 * 1024, (name, len(data))
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        print(f"{len(data):6d} {os.path.relpath(os.path.join(out, name), os.path.join(HERE, '..'))}")
