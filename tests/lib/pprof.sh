# Google's pprof, built once into build/tools from Debian's sources
# (golang-github-google-pprof-dev, GOPATH mode, no network).  Source it after
# check.sh and scratch; PPROF is then the binary, or absent (callers skip).
PPROF=$TOP/build/tools/pprof
ensure_pprof() {
	local gosrc=/usr/share/gocode
	if [[ ! -x $PPROF ]] && command -v go >/dev/null && [[ -d $gosrc/src/github.com/google/pprof ]]; then
		mkdir -p "$TOP/build/tools"
		GOPATH=$gosrc GO111MODULE=off GOFLAGS= GOCACHE=$TOP/build/tools/gocache GOPROXY=off \
			go build -o "$PPROF.tmp.$$" github.com/google/pprof >"${SCRATCH:-/tmp}/gobuild" 2>&1 &&
			mv "$PPROF.tmp.$$" "$PPROF"
	fi
	[[ -x $PPROF ]]
}
