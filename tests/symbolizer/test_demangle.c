/* symz_demangle on C++ (Itanium) and Rust (legacy and v0) names.
 * Without arguments: fixed cases whose expected text comes from independent
 * demanglers (llvm-cxxfilt-19; rustc-demangle through the npm package
 * gecko-profiler-demangle).  With --stdin: demangles one name per line (the
 * name itself when it is not mangled), for test_demangle.sh, which checks
 * real rustc-built and C++ symbols against those tools. */
#include "symbolizer/symbolizer.h"
#include "tests/lib/check.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	const char *mangled, *want;
} cases[] = {
	/* C++ */
	{ "_ZN3foo3barEv", "foo::bar()" },
	{ "_ZNKSt6vectorIiSaIiEE4sizeEv", "std::vector<int, std::allocator<int> >::size() const" },
	{ "memcpy@GLIBC_2.14", "memcpy" },
	{ "_ZN3foo3barEv@@V2", "foo::bar()" },
	/* Rust legacy: the hash is dropped, $-escapes decoded. */
	{ "_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write" },
	{ "_ZN104_$LT$core..iter..sources..from_fn..FromFn$LT$F$GT$$u20$as$u20$core..iter..traits..iterator..Iterator$GT$4next17h5029af7e7bac568fE",
	  "<core::iter::sources::from_fn::FromFn<F> as core::iter::traits::iterator::Iterator>::next" },
	/* Rust v0 */
	{ "_RNvCs1234_7mycrate3foo", "mycrate::foo" },
	{ "_RNvMNtCs4Rb3bEa6OOM_1r8examplesINtB2_2SqdE4area", "<r::examples::Sq<f64>>::area" },
};

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--stdin")) {
		char line[8192];
		while (fgets(line, sizeof(line), stdin)) {
			line[strcspn(line, "\n")] = 0;
			char *d = symz_demangle(line);
			printf("%s\n", d ? d : line);
			free(d);
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *d = symz_demangle(cases[i].mangled);
		char name[64];
		snprintf(name, sizeof(name), "demangle_%zu", i);
		CHECK(d && !strcmp(d, cases[i].want), name, "%s -> '%s', want '%s'", cases[i].mangled,
		      d ? d : "(null)", cases[i].want);
		free(d);
	}
	CHECK_EXIT();
}
