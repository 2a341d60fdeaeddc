import { openFileState, rdevMajor } from '../../linux/open-file.js';
import { FdDumper, fdProblem } from './fd-dumper.js';

/** include/uapi/linux/major.h: /dev/null, /dev/zero and friends, which CRIU reopens by path. */
const MEM_MAJOR = 1;

/** Files reopened by path on restore (criu/files-reg.c): regular files, directories, and the memory devices. */
export const regularFd: FdDumper = {
  kinds: ['regular', 'directory', 'chardev'],
  dump(files, fd) {
    if (fd.kind === 'chardev' && rdevMajor(fd.identity.inode) !== MEM_MAJOR) return { problems: [fdProblem(fd, `character device ${fd.name} (not supported)`)] };
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (fresh) {
      const st = openFileState(fd.file);
      files.regEntry(id, st.path, fd.identity, st.flags, st.pos, files.fown(fd.file), fd.task, fd.fd, st.inode);
    }
    return { opened: { id, type: 'REG' } };
  },
};
