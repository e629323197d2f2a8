#!/usr/bin/env bash
# Lays the test bed for training/eval/everyday.jsonl in the CURRENT directory: every file and folder
# the file-system requests name. Deterministic content; relative paths only; nothing outside ".".
# Names a request creates (build, empty.txt, final.txt, greeting.txt, src_backup, www, ...) are left absent.
# Usage: mkdir -p /tmp/tb && cd /tmp/tb && bash /path/to/testbed.sh
set -euo pipefail
umask 022
OLD='2020-01-01 00:00:00'   # fixed mtime for "older than N days" requests

mkdir -p src/lib src/__pycache__ docs reports backup archive scratch downloads dist cache old_site \
  images photos releases/v1 releases/v2 logs/archive restore empty_dir public scripts uploads shared \
  web/node_modules/leftpad
rm -rf ./stage ./site && mkdir stage site   # staging for the archives below (relative, removed at the end)

# --- logs -------------------------------------------------------------------------------------
for i in $(seq 1 120); do
  if (( i % 40 == 0 )); then echo "line $i FATAL worker $i crashed: out of memory"
  elif (( i % 10 == 0 )); then echo "line $i ERROR request $i failed: connection refused"
  elif (( i % 7 == 0 )); then echo "line $i WARN request $i slow: timeout after 30s"
  elif (( i % 13 == 0 )); then echo "line $i INFO retrying after error on request $i"
  else echo "line $i INFO request $i handled in $(( i % 9 + 1 ))ms"
  fi
done > server.log
printf 'line 1 INFO service started\nline 2 ERROR disk almost full\nline 3 INFO service stopped\n' > old.log
for i in $(seq 1 80); do echo "app line $i INFO job $i done"; done > logs/app.log
printf 'app line 1 ERROR database timeout\napp line 2 ERROR connection refused by 10.0.0.5\n' > logs/error.log
for i in $(seq 1 60); do
  code=200; (( i % 6 == 0 )) && code=404; (( i % 15 == 0 )) && code=500
  echo "10.0.0.$(( i % 5 + 1 )) - - \"GET /page/$i HTTP/1.1\" $code $(( i * 10 ))"
done > logs/access.log
for i in $(seq 1 30); do echo "app line $i INFO rotated entry $i"; done > logs/app.log.1
echo "app line 31 ERROR rotated error" >> logs/app.log.1
gzip -n -f logs/app.log.1
echo "archived 2019 entry" > logs/archive/2019.log
seq 1 150000 | sed 's/^/debug line /' > logs/debug.log   # about 2.4M of text
touch -d "$OLD" old.log logs/archive/2019.log

# --- plain text files -------------------------------------------------------------------------
printf 'team meeting on monday at ten\nbudget review with alice\nproject deadline is friday\nbuy a new keyboard\ncall bob about the server\n' > notes.txt
printf 'first draft of the report\nneeds a conclusion\n' > draft.txt
printf 'write tests\nfix login bug\nupdate docs\nreview pull request\ndeploy to staging\nclean up logs\n' > todo.txt
printf 'this file name has a space\n' > 'my file.txt'
printf 'alice\nbob\ncarol\nalice\ndave\nbob\nalice\neve\n' > names.txt
printf '42\n7\n93\n15\n9\n100\n58\n91\n23\n' > numbers.txt
printf 'The cat sat on the mat.\n\nIt was the best of times.\n\n\nThe end of the story is near.\n' > essay.txt
printf 'pear\napple\nfig\napple\nbanana\n' > words.txt
printf 'part one of the text\n' > part1.txt
printf 'part two of the text\n' > part2.txt
printf 'apple\nbanana\ncherry\ngrape\n' > list1.txt
printf 'banana\ngrape\nkiwi\nmango\n' > list2.txt
printf 'name\tscore\tcity\nalice\t90\tparis\nbob\t75\tberlin\n' > table.tsv
printf 'first windows line\r\nsecond windows line\r\n' > windows.txt
printf 'scratch data\n' > temp.txt
printf 'locked data\n' > locked.txt
printf 'README at the top level\n' > README.txt
printf -- '-- dump of the database\nCREATE TABLE users (id int);\n' > db-backup.sql
printf 'requests==2.31.0\nflask==3.0.0\n' > requirements.txt
printf 'https://example.com/a.txt\nhttps://example.com/b.txt\n' > urls.txt
printf 'FROM debian:12\nCMD ["echo", "hello"]\n' > Dockerfile
printf 'all:\n\t@echo built\n' > Makefile
printf 'setting=old\n' > settings.bak
printf 'old source\n' > src/old.bak
printf 'temporary one\n' > cache1.tmp
printf 'temporary two\n' > cache2.tmp
printf 'API_KEY=not-a-real-key\n' > .env
printf '*.pyc\nbuild/\n' > .gitignore
printf 'BEGIN KEY\nnot-a-real-secret\nEND KEY\n' > secret.key

# --- config and data --------------------------------------------------------------------------
printf '# app configuration\nhost: localhost\nport: 8080\n# database\ndb_url: postgres://localhost/app\ndebug:\ttrue\npassword: not-a-real-password\n' > config.yaml
printf 'host=localhost\nport=8080\nworkers=2\n' > old.conf
printf 'host=localhost\nport=9090\nworkers=4\n' > new.conf
printf 'name,score,city\nalice,90,paris\nbob,45,berlin\ncarol,72,rome\ndave,12,oslo\neve,66,madrid\n' > data.csv
printf 'region,total\nnorth,1200\nsouth,950\neast,1430\nwest,870\n' > report-2024.csv
printf 'id,value\n1,10\n2,20\n' > sales.csv
gzip -n -f sales.csv   # leaves sales.csv.gz only
{ echo 'id,value'; seq 1 2999 | sed 's/$/,1/'; } > big.csv
truncate -s 150M video.mp4

# --- code -------------------------------------------------------------------------------------
cat > app.py <<'PY'
import os
import sys


def main():
    # TODO: read the port from config.yaml
    print("hello from", os.getcwd())
    return 0


if __name__ == "__main__":
    sys.exit(main())
PY
printf 'import os\nimport json\n\n# TODO: handle errors\ndef load(path):\n    return json.load(open(path))\n' > src/main.py
printf 'def add(a, b):\n    return a + b\n' > src/utils.py
printf 'import re\n\n\ndef slug(text):\n    return re.sub(r"\\W+", "-", text)\n' > src/lib/helper.py
: > src/lib/__init__.py
printf '#include <stdio.h>\n\nint main(void) {\n    /* TODO: parse args */\n    printf("hello\\n");\n    return 0;\n}\n' > src/main.c
printf 'int twice(int x) { return 2 * x; }\n' > src/util.c
printf 'compiled bytes\n' > src/__pycache__/main.cpython-311.pyc
printf '#!/bin/sh\necho deploying\n' > deploy.sh
printf '#!/bin/sh\necho backing up\n' > backup.sh
printf '#!/bin/sh\nsleep 2\necho done\n' > long_task.sh
chmod +x backup.sh long_task.sh
printf '#!/bin/sh\necho build\n' > scripts/build.sh
printf '#!/bin/sh\necho test\n' > scripts/test.sh
chmod 644 scripts/*.sh deploy.sh

# --- web, images, folders -----------------------------------------------------------------------
printf '<html><body>home</body></html>\n' > index.html
printf '<html><body>old home page</body></html>\n' > home.htm
printf '<html><body>public page</body></html>\n' > public/index.html
printf 'guest entry\n' > public/guestbook.txt
chmod 666 public/guestbook.txt
printf 'module.exports = 1;\n' > web/node_modules/leftpad/index.js
for img in photo cat dog; do printf '\xff\xd8\xff\xe0\x00\x10JFIF\x00%s\n' "$img" > "$img.jpg"; done
for n in 1 2 3; do printf '\xff\xd8\xff\xe0 holiday %s\n' "$n" > "photos/holiday$n.jpg"; done
printf 'logo\n' > images/logo.png
printf '# Readme\nThis is the documentation.\n' > docs/readme.md
printf '# Guide\nStep one.\n' > docs/guide.md
printf 'v1\n' > releases/v1/app.txt
printf 'v2\n' > releases/v2/app.txt
ln -sfn releases/v1 current
printf 'invoice\n' > downloads/invoice.pdf
printf 'setup\n' > downloads/setup.deb
printf 'scratch notes\n' > scratch/ideas.txt
printf 'bundle\n' > dist/app.js
printf 'styles\n' > dist/app.css
printf 'fresh cache\n' > cache/new.dat
printf 'stale cache\n' > cache/stale.dat
touch -d "$OLD" cache/stale.dat
printf 'old site\n' > old_site/index.html
printf 'uploaded\n' > uploads/file1.txt
printf 'shared doc\n' > shared/plan.txt
printf 'last quarter\n' > reports/q3.csv

# --- archives ---------------------------------------------------------------------------------
printf 'host: backup-host\n' > stage/config.yaml
printf 'saved notes\n' > stage/notes-archive.txt
tar -czf backup.tar.gz -C stage config.yaml notes-archive.txt
tar -czf release.tar.gz -C releases v2
tar -cf archive.tar -C stage notes-archive.txt
rm -r stage
printf '<html><body>site</body></html>\n' > site/index.html
printf 'body { color: black; }\n' > site/style.css
rm -f site.zip && python3 -m zipfile -c site.zip site   # unzips into site/
rm -r site
