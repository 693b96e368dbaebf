#!/usr/bin/env bash
# Hunt throughput on AWS CloudTrail, in the two shapes it comes in: log files as delivered to S3
# (gzip, `{"Records": [...]}` of 1,000 events each) and one event a line (a data-lake export).
# Builds SIZE_MB (default 256) of uncompressed JSON: calls by 200 instances' role sessions from
# their own addresses (most of the volume, as in real accounts), IAM users, AWS services acting
# for the account, one in 5,000 calls made with an instance's session from an outside address,
# one in 50 delivered over IMDSv1; then runs, RUNS times each (default 3), page cache warm:
# imdsguard hunt -j 1 (pinned to core 0) and -j 2 over the gzip files, the same over the
# one-a-line file, imdsguard events -j 1 over it, and rg -c over it (pinned to core 0).
# Prints one line per run: what, seconds, MB/s of uncompressed JSON, peak RSS (MB). --no-db.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${SIZE_MB:-256}
runs=${RUNS:-3}
command -v rg >/dev/null || { apt-get update -qq && apt-get install -y -qq ripgrep >/dev/null; }
cargo build --release -q
mkdir -p target/bench
dir=target/bench/cloudtrail-${size_mb}m
lines=target/bench/cloudtrail-${size_mb}m.jsonl
if [ ! -s "$lines" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  python3 - "$size_mb" "$dir" "$lines" <<'PY'
import datetime, gzip, json, random, sys
limit = int(sys.argv[1]) * 1024 * 1024
out_dir, out_lines = sys.argv[2], sys.argv[3]
rnd = random.Random(7)
t0 = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
instances = [(f"i-{rnd.getrandbits(68):017x}", f"3.{rnd.randint(80,95)}.{rnd.randint(0,255)}.{rnd.randint(1,254)}",
              f"role-{n % 20}") for n in range(200)]
users = [f"user{n}" for n in range(30)]
actions = [("s3.amazonaws.com", "GetObject"), ("s3.amazonaws.com", "PutObject"), ("s3.amazonaws.com", "ListObjects"),
           ("sts.amazonaws.com", "GetCallerIdentity"), ("ec2.amazonaws.com", "DescribeInstances"),
           ("kms.amazonaws.com", "Decrypt"), ("ssm.amazonaws.com", "GetParameter"), ("logs.amazonaws.com", "PutLogEvents"),
           ("dynamodb.amazonaws.com", "GetItem"), ("secretsmanager.amazonaws.com", "GetSecretValue")]
def record(i):
    t = (t0 + datetime.timedelta(milliseconds=i * 37)).strftime("%Y-%m-%dT%H:%M:%SZ")
    src, name = actions[i % len(actions)]
    kind = i % 20
    if kind < 13:
        inst, ip, role = instances[rnd.randrange(len(instances))]
        if i % 5000 == 4980:
            ip = f"203.0.113.{rnd.randint(1, 254)}"
        who = {"type": "AssumedRole", "principalId": f"AROAEXAMPLE{role.upper()}:{inst}",
               "arn": f"arn:aws:sts::111122223333:assumed-role/{role}/{inst}", "accountId": "111122223333",
               "accessKeyId": f"ASIA{abs(hash(inst)) % 10**16:016d}",
               "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": f"AROAEXAMPLE{role.upper()}",
                                  "arn": f"arn:aws:iam::111122223333:role/{role}", "accountId": "111122223333", "userName": role},
                                  "attributes": {"creationDate": t, "mfaAuthenticated": "false"},
                                  "ec2RoleDelivery": "1.0" if i % 50 == 0 else "2.0"}}
        ua = "aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21.5 md/GOOS#linux md/GOARCH#amd64"
    elif kind < 18:
        u = users[i % len(users)]
        who = {"type": "IAMUser", "principalId": f"AIDAEXAMPLE{u.upper()}", "arn": f"arn:aws:iam::111122223333:user/{u}",
               "accountId": "111122223333", "accessKeyId": f"AKIAEXAMPLE{i % 997:05d}", "userName": u}
        ip, ua = f"198.51.100.{i % 250 + 1}", "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22"
    else:
        who = {"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}
        ip, ua = "cloudtrail.amazonaws.com", "cloudtrail.amazonaws.com"
    return {"eventVersion": "1.09", "userIdentity": who, "eventTime": t, "eventSource": src, "eventName": name,
            "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": ua,
            "requestParameters": {"bucketName": "data-lake-prod", "key": f"events/2026/11/{i % 30:02d}/part-{i:08d}.parquet"} if src.startswith("s3") else {"name": f"/app/config/{i % 40}"},
            "responseElements": None, "requestID": f"{i:016X}", "eventID": f"{rnd.getrandbits(128):032x}",
            "readOnly": True, "eventType": "AwsApiCall", "managementEvent": not src.startswith("s3"),
            "recipientAccountId": "111122223333", "eventCategory": "Data" if src.startswith("s3") else "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": f"{src}"}}
size, i, n = 0, 0, 0
with open(out_lines, "w") as nd:
    while size < limit:
        batch = [record(i + k) for k in range(1000)]
        i += 1000
        text = json.dumps({"Records": batch}, separators=(",", ":"))
        with gzip.open(f"{out_dir}/111122223333_CloudTrail_us-east-1_{n:05d}.json.gz", "wt", compresslevel=1) as f:
            f.write(text)
        for r in batch:
            nd.write(json.dumps(r, separators=(",", ":")) + "\n")
        size += len(text)
        n += 1
PY
fi
bytes=$(stat -c %s "$lines")
mb=$(python3 -c "print($bytes / 1048576)")
echo "files: $dir ($(ls "$dir" | wc -l) gzip Records files, $(du -sm "$dir" | cut -f1) MB compressed) and $lines ($(python3 -c "print(round($mb))") MB, $(wc -l < "$lines") events), $(nproc) cores"
run() {
  local what=$1; shift
  for _ in $(seq "$runs"); do
    /usr/bin/time -o target/bench/time.txt -f '%e %M' "$@" > /dev/null 2> target/bench/ct-stderr.txt || true
    read -r secs rss < target/bench/time.txt
    python3 -c "print(f'{\"$what\":<34} {$secs:6.2f} s {($mb / max($secs, 0.01)):8.0f} MB/s {$rss / 1024:7.1f} MB')"
  done
}
run "hunt -j 1, Records .json.gz" taskset -c 0 target/release/imdsguard hunt --no-db -j 1 --output jsonl "$dir"
run "hunt -j 2, Records .json.gz" target/release/imdsguard hunt --no-db -j 2 --output jsonl "$dir"
grep -E "events   aws-cloudtrail|alerts   [0-9]" target/bench/ct-stderr.txt || true
run "hunt -j 1, one a line" taskset -c 0 target/release/imdsguard hunt --no-db -j 1 --output jsonl "$lines"
run "hunt -j 2, one a line" target/release/imdsguard hunt --no-db -j 2 --output jsonl "$lines"
grep -E "events   aws-cloudtrail|alerts   [0-9]" target/bench/ct-stderr.txt || true
run "events -j 1, one a line" taskset -c 0 target/release/imdsguard events -j 1 "$lines"
run "rg -c ec2RoleDelivery" taskset -c 0 rg -c ec2RoleDelivery "$lines"
