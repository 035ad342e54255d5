// A copy of pkg/hooks/testdata/loader/mapexec.c: the kernel lanes take each
// package's own testdata (and build its C programs) for the packages run.
// mapexec FILE...: maps each FILE's first two pages readable and
// executable, as a dynamic loader maps a library's segments (two mappings
// of one file), then exits. TestLoaderEvents (pkg/hooks) and TestLoaderThroughAgent
// (pkg/agent) run it.
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY);
		if (fd < 0) {
			perror(argv[i]);
			return 1;
		}
		for (int seg = 0; seg < 2; seg++) {
			void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, seg * 4096);
			if (p == MAP_FAILED) {
				perror("mmap");
				return 1;
			}
		}
		close(fd);
	}
	return 0;
}
