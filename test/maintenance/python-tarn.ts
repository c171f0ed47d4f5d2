/**
 * Runs Python tarn's own DiskDict walk on a lake: `contents()` as tarn lists it. tarn is imported
 * from its source folder, named by $CAIRN_TARN_SOURCE (the folder holding the `tarn` package), or
 * from an installed package. Modules tarn imports only for its remote locations (redis, paramiko,
 * scp, s3fs, tqdm, humanfriendly) are stood in for when they are not installed: the walk of a
 * local lake never calls them.
 */
import { execFile } from 'node:child_process';

const PROGRAM = String.raw`
import importlib.abc, importlib.machinery, importlib.util, json, os, sys, types
OPTIONAL = ['paramiko', 'scp', 'tqdm', 'redis', 'humanfriendly', 's3fs']
missing = {name for name in OPTIONAL if importlib.util.find_spec(name) is None}

class Stand(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        return type(name, (), {'__init__': lambda self, *args, **kwargs: None})

class StandIns(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in missing:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        return Stand(spec.name)
    def exec_module(self, module):
        module.__path__ = []

sys.meta_path.append(StandIns())
if os.environ.get('CAIRN_TARN_SOURCE'):
    sys.path.insert(0, os.environ['CAIRN_TARN_SOURCE'])
from pathlib import Path
from tarn import DiskDict
print(json.dumps([key.hex() for key, _, _ in DiskDict(Path(sys.argv[1])).contents()]))
`;

/** The keys Python tarn's DiskDict lists in the lake at `root` (rejects with tarn's traceback when its walk fails). */
export function tarnContents(root: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', PROGRAM, root], { env: process.env }, (error, stdout, stderr) => {
      if (error) reject(new Error(`python tarn failed on ${root} (tarn is found through $CAIRN_TARN_SOURCE, the folder holding its package, or installed): ${stderr || error.message}`));
      else resolve(JSON.parse(stdout) as string[]);
    });
  });
}
