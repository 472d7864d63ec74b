import { chmod, mkdir, stat } from 'node:fs/promises'
import { StartupError } from '../errors/startup.js'

/** DATA_DIR: made when missing, refused in one line when it is a file, entered by its owner only. */
export async function preparePrivateFolder(folder: string): Promise<void> {
  try {
    await mkdir(folder, { recursive: true, mode: 0o700 })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new StartupError(`DATA_DIR ${folder} is a file, not a folder`)
    throw new StartupError(`DATA_DIR ${folder} cannot be created: ${(error as Error).message}`)
  }
  if (!(await stat(folder)).isDirectory()) throw new StartupError(`DATA_DIR ${folder} is a file, not a folder`)
  await chmod(folder, 0o700)
}
