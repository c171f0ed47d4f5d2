"""Runs Python tarn for cairn's interop tests: reads one JSON request on stdin, prints one JSON reply.

Request: {"location": {...}, "labels": [...] or null, "ops": [{"op": ...}, ...]}
  location kinds: disk (root), redis (url, prefix, keep_labels, keep_usage), s3 (endpoint, bucket,
  key, secret), sftp and scp (host, port, root, username, key_file), nginx (url)
  ops: write (data: base64, labels), read (key: hex), labels (key), contents, touch (key), delete (key)
Reply: {"results": [...]} with one entry per op, or {"error": {"type", "message"}} for the first
op that raised (its index in "at").
"""
import base64
import json
import os
import sys
import traceback
from pathlib import Path

from tarn import SCP, SFTP, DiskDict, HashKeyStorage, Nginx, RedisLocation, S3


def make_location(spec):
    kind = spec['kind']
    if kind == 'disk':
        return DiskDict(spec['root'])
    if kind == 'redis':
        return RedisLocation(spec['url'], prefix=spec.get('prefix', ''), keep_labels=spec.get('keep_labels', False),
                             keep_usage=spec.get('keep_usage', False))
    if kind == 's3':
        return S3(spec['endpoint'], spec['bucket'], key=spec['key'], secret=spec['secret'])
    if kind in ('sftp', 'scp'):
        cls = SFTP if kind == 'sftp' else SCP
        return cls(spec['host'], spec['root'], port=spec['port'], username=spec['username'], key=Path(spec['key_file']))
    if kind == 'nginx':
        return Nginx(spec['url'])
    raise ValueError(f'unknown location kind {kind}')


def read_all(value):
    if isinstance(value, (str, os.PathLike)):
        return Path(value).read_bytes()
    return value.read()


def when(moment):
    return None if moment is None else moment.timestamp()


def run(op, location, storage):
    name = op['op']
    if name == 'write':
        key = storage.write(base64.b64decode(op['data']), labels=op.get('labels'))
        return None if key is None else key.hex()
    if name == 'read':
        with location.read(bytes.fromhex(op['key']), False) as value:
            return None if value is None else base64.b64encode(read_all(value)).decode()
    if name == 'labels':
        with location.read(bytes.fromhex(op['key']), True) as found:
            if found is None:
                return None
            labels = found[1]
            return None if labels is None else sorted(labels)
    if name == 'contents':
        entries = []
        for key, _, meta in location.contents():
            labels = meta.labels
            entries.append({'key': key.hex(), 'labels': None if labels is None else sorted(labels),
                            'last_used': when(meta.last_used)})
        return sorted(entries, key=lambda entry: entry['key'])
    if name == 'touch':
        return location.touch(bytes.fromhex(op['key']))
    if name == 'delete':
        return location.delete(bytes.fromhex(op['key']))
    raise ValueError(f'unknown op {name}')


def main():
    request = json.load(sys.stdin)
    results = []
    try:
        location = make_location(request['location'])
        storage = HashKeyStorage(location, labels=request.get('labels'))
        for op in request['ops']:
            results.append(run(op, location, storage))
    except Exception as error:  # reported to the test, which decides whether it was expected
        json.dump({'results': results, 'at': len(results),
                   'error': {'type': type(error).__name__, 'message': str(error), 'trace': traceback.format_exc()}},
                  sys.stdout)
        return
    json.dump({'results': results}, sys.stdout)


if __name__ == '__main__':
    main()
