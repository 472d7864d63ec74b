/** Prints a free loopback TCP port, found the way the tests find theirs (CI's throwaway PostgreSQL listens there). */
import { freePort } from '../tests/helpers/server.js'

console.log(await freePort())
