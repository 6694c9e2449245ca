"""Which checkpoint a resumed run starts from: the newest intact one."""
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional, Tuple

#: checkpoints CheckpointHook names by epoch or iteration
_STEP_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def checkpoint_damage(path: str) -> Optional[str]:
    """Why the file at ``path`` cannot be a complete checkpoint, or None.

    torch saves a zip archive whose members carry CRC-32 checksums: a file
    cut short has no zip directory at its end, a file damaged inside fails
    its checksum. Every byte is read (about a second per GB), nothing is
    unpickled. Files in torch's legacy (pre-1.6, non-zip) format cannot be
    checked this way and pass.
    """
    if not osp.isfile(path):
        return 'no such file'
    size = osp.getsize(path)
    if size == 0:
        return 'empty file'
    with open(path, 'rb') as f:
        head = f.read(4)
    if head != b'PK\x03\x04':
        if head[:1] == b'\x80':  # a pickle: torch's legacy format
            return None
        return 'not a PyTorch checkpoint (no zip header)'
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
    except zipfile.BadZipFile:
        return f'truncated ({size} bytes, no zip directory at the end)'
    except (OSError, EOFError, ValueError) as e:
        return f'unreadable zip archive ({e})'
    if bad_member is not None:
        return f'damaged: {bad_member} fails its CRC check'
    return None


def read_last_checkpoint(work_dir: str) -> Tuple[Optional[str], List[str]]:
    """The checkpoint the ``last_checkpoint`` file names, and notes on how
    it was read.

    mmmim writes a path relative to the work dir; mmengine writes an absolute
    one. For an absolute path outside this work dir (a copied or moved work
    dir), this work dir's file of the same name wins when it exists.
    """
    notes = []
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None, notes
    try:
        with open(record) as f:
            named = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        return None, [f'{record} is unreadable ({e})']
    if not named:
        return None, [f'{record} is empty']
    if '://' in named:
        return named, notes
    if not osp.isabs(named):
        return osp.join(work_dir, named), notes
    inside = not osp.relpath(named, work_dir).startswith(os.pardir)
    own_copy = osp.join(work_dir, osp.basename(named))
    if not inside and osp.isfile(own_copy):
        notes.append(f'last_checkpoint names {named}, outside this work '
                     f'dir; using this work dir\'s {osp.basename(named)}')
        return own_copy, notes
    return named, notes


def _step_of(path: str) -> Optional[Tuple[str, int]]:
    """('iter', 3) for '.../iter_3.pth'; None for other names."""
    match = _STEP_NAME.match(osp.basename(path))
    return (match.group(1), int(match.group(2))) if match else None


def step_checkpoints(directory: str) -> List[str]:
    """``epoch_N.pth`` / ``iter_N.pth`` files in ``directory``, the highest
    N first."""
    if not osp.isdir(directory):
        return []
    found = [(_step_of(name)[1], name) for name in os.listdir(directory)
             if _step_of(name)]
    return [osp.join(directory, name) for _, name in sorted(found,
                                                            reverse=True)]


def find_resumable_checkpoint(work_dir: str) -> Tuple[Optional[str],
                                                      List[str]]:
    """The newest intact checkpoint of the run in ``work_dir``, and notes
    (what was skipped and why) for the log.

    ``last_checkpoint`` is tried first; when it is missing, unreadable or
    names a damaged file, the ``epoch_N`` / ``iter_N`` checkpoints in the work
    dir are tried newest first (older than the named one, when one is named:
    a newer one is left over from an earlier run in the same directory).
    """
    work_dir = osp.abspath(work_dir)
    named, notes = read_last_checkpoint(work_dir)
    candidates = step_checkpoints(work_dir)
    if named is not None:
        if '://' in named:  # remote storage: mmengine's loader checks it
            return named, notes
        damage = checkpoint_damage(named)
        if damage is None:
            return named, notes
        notes.append(f'{named} (named by last_checkpoint): {damage}')
        named_step = _step_of(named)
        if named_step and osp.dirname(osp.abspath(named)) == work_dir:
            candidates = [c for c in candidates
                          if _step_of(c)[0] == named_step[0]
                          and _step_of(c)[1] < named_step[1]]
    for candidate in candidates:
        damage = checkpoint_damage(candidate)
        if damage is None:
            return candidate, notes
        notes.append(f'{candidate}: {damage}')
    return None, notes
