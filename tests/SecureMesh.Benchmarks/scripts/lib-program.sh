# Sourced by the benchmark scripts: sets SMX, the command line that runs SecureMesh, and SM, a function running it.
# The build, as cost_per_gib.py's program() chooses it: SECUREMESH_EXE when set, else SECUREMESH_DLL, else this
# checkout's Release build (dotnet build src/SecureMesh.Cli -c Release). A path ending in .dll runs with dotnet; any
# other file runs directly (the apphost, or the Native AOT executable); a folder (a publish folder) runs the securemesh
# executable in it, or its securemesh.dll when there is none. A path that names nothing stops the script.
securemesh_program() {
  local path=${SECUREMESH_EXE:-${SECUREMESH_DLL:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/src/SecureMesh.Cli/bin/Release/net10.0/securemesh.dll}}
  if [[ -d $path ]]; then
    if [[ -f $path/securemesh ]]; then path=$path/securemesh; else path=$path/securemesh.dll; fi
  fi
  if [[ ! -f $path ]]; then
    echo "no $path: dotnet build src/SecureMesh.Cli -c Release (or set SECUREMESH_DLL or SECUREMESH_EXE)" >&2
    return 1
  fi
  if [[ $path == *.dll ]]; then SMX=(dotnet "$path"); else SMX=("$path"); fi
}
securemesh_program || exit 1
SM() { "${SMX[@]}" "$@"; }
