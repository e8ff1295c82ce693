#include "config.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dotstub/rand.h"

/* Per thread, so that threads need no lock (see worker). */
static _Thread_local uint64_t state;

static void seed(void)
{
	if (getrandom(&state, sizeof(state), 0) != sizeof(state))
		state = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	state |= 1;
}

/* xorshift64*: tiny, fast, and good enough for unpredictable-looking IDs. */
uint32_t rand_u32(void)
{
	if (state == 0)
		seed();
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return (uint32_t)((state * 0x2545F4914F6CDD1DULL) >> 32);
}
