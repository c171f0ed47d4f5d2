"""A stand-in for the `s3fs` package, which Debian does not ship: the few calls of S3FileSystem that
tarn's S3 location makes (open, walk, get_tags, put_tags, delete), made with Debian's boto3 against
a real S3 server. Only the interop tests put it on tarn's import path."""
from .core import S3FileSystem

__all__ = ['S3FileSystem']
