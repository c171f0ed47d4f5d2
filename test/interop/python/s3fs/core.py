"""S3FileSystem as tarn uses it: paths are `bucket/object/key`, a missing object is FileNotFoundError."""
import io

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

MISSING = {'NoSuchKey', '404', 'NotFound'}


def _split(path):
    bucket, _, key = path.strip('/').partition('/')
    return bucket, key


class _Upload(io.BytesIO):
    """A file opened for writing: its bytes go up in one PUT when it is closed."""

    def __init__(self, client, bucket, key):
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key

    def close(self):
        if not self.closed:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=self.getvalue())
        super().close()


class S3FileSystem:
    def __init__(self, key=None, secret=None, client_kwargs=None, **_ignored):
        self._client = boto3.client(
            's3', aws_access_key_id=key, aws_secret_access_key=secret, region_name='us-east-1',
            config=Config(s3={'addressing_style': 'path'}), **(client_kwargs or {}))

    def _missing(self, error, path):
        if error.response.get('Error', {}).get('Code') in MISSING:
            return FileNotFoundError(path)
        return error

    def open(self, path, mode='rb'):
        bucket, key = _split(path)
        if mode == 'wb':
            return _Upload(self._client, bucket, key)
        try:
            body = self._client.get_object(Bucket=bucket, Key=key)['Body'].read()
        except ClientError as error:
            raise self._missing(error, path) from None
        return io.BytesIO(body)

    def walk(self, path):
        """Like os.walk, over the object names under `path` (folders are the parts between '/')."""
        bucket, prefix = _split(path)
        files = {}
        paginator = self._client.get_paginator('list_objects_v2')
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix + '/' if prefix else ''):
            for item in page.get('Contents', []):
                folder, _, name = item['Key'].rpartition('/')
                files.setdefault(folder, []).append(name)
        for folder in sorted(files):
            yield (f'{bucket}/{folder}' if folder else bucket), [], files[folder]

    def get_tags(self, path):
        bucket, key = _split(path)
        try:
            reply = self._client.get_object_tagging(Bucket=bucket, Key=key)
        except ClientError as error:
            raise self._missing(error, path) from None
        return {tag['Key']: tag['Value'] for tag in reply['TagSet']}

    def put_tags(self, path, tags, mode='o'):
        bucket, key = _split(path)
        tag_set = [{'Key': name, 'Value': value} for name, value in tags.items()]
        try:
            self._client.put_object_tagging(Bucket=bucket, Key=key, Tagging={'TagSet': tag_set})
        except ClientError as error:
            raise self._missing(error, path) from None

    def delete(self, path):
        bucket, key = _split(path)
        self._client.delete_object(Bucket=bucket, Key=key)
