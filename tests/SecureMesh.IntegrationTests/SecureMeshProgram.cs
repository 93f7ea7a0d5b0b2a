namespace SecureMesh.IntegrationTests;

/// <summary>
/// How the tests start the real <c>securemesh</c>: <c>dotnet securemesh.dll</c> built beside them, or, when
/// <c>SECUREMESH_EXE</c> names an executable (the Native AOT build that <c>./test.sh</c> publishes), that executable,
/// so the same process tests run against what an install runs. A variable naming a missing file fails every such
/// test instead of quietly testing the dll.
/// </summary>
internal static class SecureMeshProgram
{
    public const string ExecutableVariable = "SECUREMESH_EXE";

    /// <summary>The <c>securemesh.dll</c> built beside this test assembly (the test project references the CLI).</summary>
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "securemesh.dll");

    /// <summary>The executable <c>SECUREMESH_EXE</c> names, or null when the tests run the dll.</summary>
    public static string? Executable
    {
        get
        {
            if (Environment.GetEnvironmentVariable(ExecutableVariable) is not { Length: > 0 } path)
            {
                return null;
            }
            var full = Path.GetFullPath(path);
            if (!File.Exists(full) || (File.GetUnixFileMode(full) & UnixFileMode.UserExecute) == 0)
            {
                throw new InvalidOperationException($"{ExecutableVariable}={path}: no executable there");
            }
            return full;
        }
    }

    /// <summary>The command line that runs <c>securemesh ARGS</c>: the program first, then its arguments.</summary>
    public static IReadOnlyList<string> Command(IEnumerable<string> args) =>
        Executable is { } exe ? [exe, .. args] : [NodeProcess.Dotnet, Dll, .. args];

    /// <summary>The same as one line for <c>sh</c>, each word quoted.</summary>
    public static string ShellCommand(IEnumerable<string> args) => string.Join(' ', Command(args).Select(ShellQuote));

    public static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
