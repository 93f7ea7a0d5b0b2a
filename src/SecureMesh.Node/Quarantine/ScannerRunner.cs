using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using SecureMesh.Core;
using SecureMesh.Storage;

namespace SecureMesh.Node.Quarantine;

/// <summary>What a scan concluded.</summary>
public enum ScanVerdict
{
    /// <summary>No scanner is configured.</summary>
    NotConfigured,
    /// <summary>Exit code 0.</summary>
    Clean,
    /// <summary>Exit code 1: the scanner found something.</summary>
    Infected,
    /// <summary>Any other exit, a crash, a time-out, or a scanner that could not start.</summary>
    Failed,
}

/// <summary>The outcome of one scan; <see cref="Reason"/> names the scanner and is safe to show and store.</summary>
public sealed record ScanResult(ScanVerdict Verdict, string? Reason)
{
    /// <summary>True when the file may be released as far as the scanner is concerned.</summary>
    public bool Passed => Verdict is ScanVerdict.Clean or ScanVerdict.NotConfigured;
}

/// <summary>
/// Runs the configured scanner in the ClamAV convention: the command line is split like a shell would (quotes,
/// backslash escapes; no expansion), the file path replaces an argument that is exactly <c>{}</c> or is appended
/// (a <c>{}</c> inside a larger argument is refused when the setting is made: a path spliced into, say, an
/// <c>sh -c</c> script would be code); exit 0 is clean, 1 infected, anything else (or a crash, a time-out, a missing
/// program) holds the file. The path given is one the node made (<c>quarantine/ID.data</c>), never a peer's name.
/// The scanner runs in a session and process group of its own (through <c>setsid</c>), and the whole group is killed
/// at the time limit and when the scanner exits, so a child that double-forked away from it dies with it.
/// </summary>
public sealed partial class ScannerRunner
{
    /// <summary>The placeholder for the file's path; only ever a whole argument.</summary>
    public const string Placeholder = "{}";

    private const int MaxLineChars = 200;
    private const int SigKill = 9;
    private static readonly string? s_setsid = new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);
    private static readonly TimeSpan DrainWait = TimeSpan.FromSeconds(2);

    private readonly string[] _arguments;
    private readonly string? _invalid;

    /// <summary>A runner for <paramref name="commandLine"/> (null or blank: no scanning) with a time limit.</summary>
    public ScannerRunner(string? commandLine, TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "the scanner time limit must be positive");
        }
        if (!string.IsNullOrWhiteSpace(commandLine) && Validate(commandLine) is { } error)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"the scanner command is invalid: {error}");
        }
        _arguments = string.IsNullOrWhiteSpace(commandLine) ? [] : SplitCommandLine(commandLine);
        Timeout = timeout;
    }

    private ScannerRunner(TimeSpan timeout, string invalid)
    {
        _arguments = [];
        _invalid = invalid;
        Timeout = timeout;
    }

    /// <summary>The time limit.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>False when no scanner is configured.</summary>
    public bool Enabled => _arguments.Length > 0 || _invalid is not null;

    /// <summary>The program's file name, as reasons name it (empty when none).</summary>
    public string Name => _arguments.Length == 0 ? string.Empty : Clean(Path.GetFileName(_arguments[0]));

    /// <summary>A runner from the <c>scanner</c> and <c>scanner-timeout</c> settings.</summary>
    public static ScannerRunner FromConfig(ConfigStore config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var command = config.Get(NodeSettings.Scanner);
        var timeoutText = config.Get(NodeSettings.ScannerTimeout) ?? NodeSettings.Get(NodeSettings.ScannerTimeout).Default;
        if (!int.TryParse(timeoutText, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds < 1)
        {
            seconds = 120;
        }
        var error = Validate(command ?? string.Empty);
        // A broken setting must hold files, not let them through unscanned or stop the pipeline.
        return error is null
            ? new ScannerRunner(command, TimeSpan.FromSeconds(seconds))
            : new ScannerRunner(TimeSpan.FromSeconds(seconds), $"the scanner setting is invalid: {error}");
    }

    /// <summary>Null when <paramref name="commandLine"/> is a usable scanner setting (empty means none), else why not.</summary>
    public static string? Validate(string commandLine)
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        try
        {
            var arguments = SplitCommandLine(commandLine);
            if (arguments.Length > 0 && arguments[0].Length == 0)
            {
                return "the program name is empty";
            }
            if (arguments.Length > 0 && arguments[0].Contains(Placeholder, StringComparison.Ordinal))
            {
                return "the program name cannot contain {}";
            }
            if (arguments.Skip(1).FirstOrDefault(a => a != Placeholder && a.Contains(Placeholder, StringComparison.Ordinal)) is { } spliced)
            {
                return $"{{}} must be a whole argument on its own, not part of '{Clean(spliced)}' (the file's path is never spliced into a larger argument)";
            }
            return null;
        }
        catch (SecureMeshException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// Null when the scanner command's program can be run: an existing, executable regular file, found as given when the
    /// name holds a '/', else on <paramref name="searchPath"/> (PATH) as a shell would. Otherwise what is wrong, in one line.
    /// </summary>
    public static string? CheckProgram(string commandLine, string? searchPath)
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        var arguments = SplitCommandLine(commandLine);
        if (arguments.Length == 0)
        {
            return null;
        }
        var program = arguments[0];
        var shown = Clean(program);
        if (program.Contains('/', StringComparison.Ordinal))
        {
            return ExecutableProblem(Path.GetFullPath(program)) is { } problem ? $"scanner program {shown} {problem}" : null;
        }
        var directories = (searchPath ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries);
        string? found = null;
        foreach (var dir in directories)
        {
            var candidate = Path.Combine(dir, program);
            var problem = ExecutableProblem(candidate);
            if (problem is null)
            {
                return null;
            }
            if (found is null && File.Exists(candidate))
            {
                found = $"scanner program {Clean(candidate)} {problem}";
            }
        }
        return found ?? $"scanner program '{shown}' was not found on PATH (install it, or give its full path)";
    }

    private static string? ExecutableProblem(string path)
    {
        if (Directory.Exists(path))
        {
            return "is a directory";
        }
        if (!File.Exists(path))
        {
            return "does not exist";
        }
        if (OperatingSystem.IsWindows())
        {
            return null;
        }
        const UnixFileMode anyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        return (File.GetUnixFileMode(path) & anyExecute) == 0 ? "is not executable" : null;
    }

    /// <summary>Scans <paramref name="path"/>; never throws for a scanner problem (that is a <see cref="ScanVerdict.Failed"/> result).</summary>
    public async Task<ScanResult> ScanAsync(string path, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (_invalid is not null)
        {
            return Failed(_invalid);
        }
        if (!Enabled)
        {
            return new ScanResult(ScanVerdict.NotConfigured, null);
        }
        // An absolute path can never be taken for an option by the scanner.
        path = Path.GetFullPath(path);
        var program = FindProgram(_arguments[0]);
        if (program is null)
        {
            return Failed($"scanner '{Name}' not found");
        }
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(program) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
        {
            return Failed($"scanner '{Name}' is not executable (permission denied)");
        }
        // setsid execs the scanner in place (same pid) as the leader of a new session and process group.
        var start = new ProcessStartInfo(s_setsid ?? program)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (s_setsid is not null)
        {
            // --wait: should setsid ever have to fork (it does when already a group leader), it still reports the scanner's exit.
            start.ArgumentList.Add("--wait");
            start.ArgumentList.Add(program);
        }
        var substituted = false;
        foreach (var argument in _arguments.AsSpan(1))
        {
            var whole = argument == Placeholder;
            substituted |= whole;
            start.ArgumentList.Add(whole ? path : argument);
        }
        if (!substituted)
        {
            start.ArgumentList.Add(path);
        }

        using var process = new Process { StartInfo = start };
        try
        {
            if (!process.Start())
            {
                return Failed($"scanner '{Name}' could not be started");
            }
        }
        catch (Win32Exception e) when (e.NativeErrorCode == 2)
        {
            return Failed($"scanner '{Name}' not found");
        }
        catch (Win32Exception e) when (e.NativeErrorCode == 13)
        {
            return Failed($"scanner '{Name}' is not executable (permission denied)");
        }
        catch (Win32Exception e)
        {
            return Failed($"scanner '{Name}' could not be started: {Clean(e.Message)}");
        }
        process.StandardInput.Close();
        var stdout = FirstLineAsync(process.StandardOutput);
        var stderr = FirstLineAsync(process.StandardError);

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(Timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            KillGroup(process);
            await DrainAsync(stdout, stderr).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            return Failed($"scanner '{Name}' timed out after {Timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s");
        }
        // Whatever it left behind in its group (a double-forked helper) ends with it.
        KillGroup(process);
        await DrainAsync(stdout, stderr).ConfigureAwait(false);
        var outLine = stdout.IsCompletedSuccessfully ? stdout.Result : null;
        var errLine = stderr.IsCompletedSuccessfully ? stderr.Result : null;
        var code = process.ExitCode;
        return code switch
        {
            0 => new ScanResult(ScanVerdict.Clean, null),
            1 => new ScanResult(ScanVerdict.Infected, $"scanner '{Name}' flagged the file" + Detail(outLine ?? errLine)),
            // .NET reports a process ended by signal N as 128 + N.
            > 128 and < 128 + 65 => Failed($"scanner '{Name}' was killed by signal {(code - 128).ToString(CultureInfo.InvariantCulture)}" + Detail(errLine ?? outLine)),
            _ => Failed($"scanner '{Name}' failed with exit code {code.ToString(CultureInfo.InvariantCulture)}" + Detail(errLine ?? outLine)),
        };
    }

    /// <summary>Splits a command line like a POSIX shell without expansion: whitespace separates, '…' and "…" quote, \ escapes.</summary>
    internal static string[] SplitCommandLine(string commandLine)
    {
        var arguments = new List<string>();
        var current = new StringBuilder();
        var inArgument = false;
        char quote = '\0';
        for (var i = 0; i < commandLine.Length; i++)
        {
            var c = commandLine[i];
            if (quote == '\'')
            {
                if (c == '\'')
                {
                    quote = '\0';
                }
                else
                {
                    current.Append(c);
                }
                continue;
            }
            if (quote == '"')
            {
                if (c == '"')
                {
                    quote = '\0';
                }
                else if (c == '\\' && i + 1 < commandLine.Length && commandLine[i + 1] is '"' or '\\' or '$' or '`')
                {
                    current.Append(commandLine[++i]);
                }
                else
                {
                    current.Append(c);
                }
                continue;
            }
            if (char.IsWhiteSpace(c))
            {
                if (inArgument)
                {
                    arguments.Add(current.ToString());
                    current.Clear();
                    inArgument = false;
                }
                continue;
            }
            inArgument = true;
            if (c is '\'' or '"')
            {
                quote = c;
            }
            else if (c == '\\' && i + 1 < commandLine.Length)
            {
                current.Append(commandLine[++i]);
            }
            else
            {
                current.Append(c);
            }
        }
        if (quote != '\0')
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "the scanner command has an unclosed quote");
        }
        if (inArgument)
        {
            arguments.Add(current.ToString());
        }
        return [.. arguments];
    }

    /// <summary>Keeps a scanner's output fit for one line of a reason: no control or format characters, at most 200 characters.</summary>
    internal static string Clean(string text)
    {
        var builder = new StringBuilder(Math.Min(text.Length, MaxLineChars + 1));
        foreach (var rune in text.EnumerateRunes())
        {
            var category = Rune.GetUnicodeCategory(rune);
            builder.Append(category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator
                or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Surrogate ? " " : rune.ToString());
            if (builder.Length > MaxLineChars)
            {
                break;
            }
        }
        var result = builder.ToString().Trim();
        return result.Length > MaxLineChars ? result[..MaxLineChars].TrimEnd() + "…" : result;
    }

    private static string Detail(string? line) => string.IsNullOrWhiteSpace(line) ? string.Empty : ": " + line;

    private static ScanResult Failed(string reason) => new(ScanVerdict.Failed, reason);

    /// <summary>The program as a path: a name with a slash as given, otherwise the first match on PATH; null when none.</summary>
    private static string? FindProgram(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal))
        {
            var full = Path.GetFullPath(name);
            return File.Exists(full) ? full : null;
        }
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (Path.IsPathFullyQualified(candidate) && File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Kills the scanner's whole process group (its session, when started through setsid), then its tree.</summary>
    private static void KillGroup(Process process)
    {
        if (s_setsid is not null && OperatingSystem.IsLinux())
        {
            try
            {
                // The group outlives its leader while any member lives, and its id is not reused meanwhile.
                _ = Kill(-process.Id, SigKill);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or InvalidOperationException)
            {
            }
        }
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // It exited meanwhile.
        }
        catch (Win32Exception)
        {
            // Best effort; the file is held either way.
        }
    }

    private static async Task DrainAsync(Task<string?> stdout, Task<string?> stderr)
    {
        // A grandchild that escaped the kill may keep a pipe open; never wait on it for long.
        try
        {
            await Task.WhenAll(stdout, stderr).WaitAsync(DrainWait).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        catch (IOException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>Reads a stream to its end, keeping only the first non-blank line (cleaned), so output size never matters.</summary>
    private static async Task<string?> FirstLineAsync(StreamReader reader)
    {
        var buffer = new char[4096];
        var line = new StringBuilder();
        string? first = null;
        int read;
        while ((read = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            if (first is not null)
            {
                continue;
            }
            for (var i = 0; i < read && first is null; i++)
            {
                if (buffer[i] is '\n' or '\r')
                {
                    if (line.ToString().Trim().Length > 0)
                    {
                        first = Clean(line.ToString());
                    }
                    line.Clear();
                }
                else if (line.Length <= MaxLineChars * 4)
                {
                    line.Append(buffer[i]);
                }
            }
        }
        if (first is null && line.ToString().Trim().Length > 0)
        {
            first = Clean(line.ToString());
        }
        return first;
    }
}
