using System.Diagnostics;
using System.Globalization;
using SecureMesh.Core;
using SecureMesh.Node.Quarantine;

namespace SecureMesh.Node.Tests.Quarantine;

public sealed class ScannerRunnerTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);
    private readonly TempDir _dir = new();
    private readonly string _file;

    public ScannerRunnerTests() => _file = _dir.File_("sample file.bin", "hello");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Exit_zero_is_clean_and_the_path_is_appended_as_the_last_argument()
    {
        var args = _dir.Combine("args");
        var script = _dir.Script("scan", $"for a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{args}'; exit 0");
        var result = await new ScannerRunner($"{script} --flag 'two words'", Generous).ScanAsync(_file, CancellationToken.None);
        Assert.Equal(ScanVerdict.Clean, result.Verdict);
        Assert.True(result.Passed);
        Assert.Equal(["--flag", "two words", _file], File.ReadAllLines(args));
    }

    [Fact]
    public async Task Braces_standing_alone_are_replaced_by_the_path()
    {
        var args = _dir.Combine("args");
        var script = _dir.Script("scan", $"for a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{args}'; exit 0");
        await new ScannerRunner($"\"{script}\" --file {{}} --last", Generous).ScanAsync(_file, CancellationToken.None);
        Assert.Equal(["--file", _file, "--last"], File.ReadAllLines(args));
    }

    [Theory]
    [InlineData("scan --file={}")]
    [InlineData("sh -c 'clamscan \"{}\"'")]
    [InlineData("scan x{}y")]
    [InlineData("{}scan")]
    public void Braces_inside_a_larger_argument_are_refused_by_the_setting_and_hold_files(string line)
    {
        // Issue 14, finding 5: "sh -c '… \"{}\"'" once spliced a peer's name into a shell script.
        Assert.NotNull(ScannerRunner.Validate(line));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => new ScannerRunner(line, Generous)).Kind);
        Assert.Null(ScannerRunner.Validate("sh -c 'clamscan \"$1\"' scan {}"));
    }

    [Fact]
    public async Task A_scanner_that_double_forks_a_helper_loses_it_at_the_time_limit()
    {
        // Issue 14, finding 11: the helper is re-parented away from the scanner's tree (the subshell that started it
        // exits), so only killing the scanner's process group reaches it.
        var pids = _dir.Combine("pids");
        var mark = _dir.Combine("PWNED");
        var script = _dir.Script("fork", $"( sleep 3 && touch '{mark}' & echo $! > '{pids}' ) ; sleep 60");
        var result = await new ScannerRunner(script, TimeSpan.FromSeconds(1)).ScanAsync(_file, CancellationToken.None);
        Assert.Equal(ScanVerdict.Failed, result.Verdict);
        await AssertHelperGoneAsync(pids, mark);
    }

    [Fact]
    public async Task A_scanner_that_exits_at_once_leaves_no_helper_behind()
    {
        var pids = _dir.Combine("pids");
        var mark = _dir.Combine("PWNED");
        var script = _dir.Script("quick", $"( sleep 3 && touch '{mark}' & echo $! > '{pids}' ) ; exit 0");
        var result = await new ScannerRunner(script, Generous).ScanAsync(_file, CancellationToken.None);
        Assert.Equal(ScanVerdict.Clean, result.Verdict);
        await AssertHelperGoneAsync(pids, mark);
    }

    private static async Task AssertHelperGoneAsync(string pids, string mark)
    {
        var helper = int.Parse(File.ReadAllText(pids).Trim(), CultureInfo.InvariantCulture);
        for (var i = 0; i < 100 && IsAlive(helper); i++)
        {
            await Task.Delay(20);
        }
        Assert.False(IsAlive(helper), $"the helper {helper} outlived the scanner");
        // Past the moment the helper would have written its file.
        await Task.Delay(TimeSpan.FromSeconds(4));
        Assert.False(File.Exists(mark), "the helper ran after the scan ended");
    }

    [Fact]
    public async Task Exit_one_is_infected_and_the_reason_names_the_scanner_and_its_found_line()
    {
        var script = _dir.Script("fakeclam", "echo \"$1: Evil.Test.Sig FOUND\u202E\u0007\"; echo second line; exit 1");
        var result = await new ScannerRunner(script, Generous).ScanAsync(_file, CancellationToken.None);
        Assert.Equal(ScanVerdict.Infected, result.Verdict);
        Assert.False(result.Passed);
        Assert.Equal($"scanner 'fakeclam' flagged the file: {_file}: Evil.Test.Sig FOUND", result.Reason);
    }

    [Fact]
    public async Task Exit_two_is_an_error_with_the_first_stderr_line()
    {
        var script = _dir.Script("scan", "echo 'LibClamAV Error: cannot open database' >&2; exit 2");
        var result = await new ScannerRunner(script, Generous).ScanAsync(_file, CancellationToken.None);
        Assert.Equal(ScanVerdict.Failed, result.Verdict);
        Assert.Equal("scanner 'scan' failed with exit code 2: LibClamAV Error: cannot open database", result.Reason);
    }

    [Fact]
    public async Task A_hanging_scanner_is_killed_with_its_children_at_the_limit()
    {
        var pids = _dir.Combine("pids");
        var script = _dir.Script("hang", $"sleep 60 & echo $$ $! > '{pids}'; wait");
        var clock = Stopwatch.StartNew();
        var result = await new ScannerRunner(script, TimeSpan.FromSeconds(1)).ScanAsync(_file, CancellationToken.None);
        clock.Stop();
        Assert.Equal(ScanVerdict.Failed, result.Verdict);
        Assert.Equal("scanner 'hang' timed out after 1 s", result.Reason);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        var ids = File.ReadAllText(pids).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(2, ids.Length);
        // Give the kernel a moment to deliver the signals.
        for (var i = 0; i < 50 && ids.Any(IsAlive); i++)
        {
            await Task.Delay(20);
        }
        Assert.All(ids, id => Assert.False(IsAlive(id), $"process {id} survived the time limit"));
    }

    [Fact]
    public async Task A_missing_program_is_a_clear_reason()
    {
        var result = await new ScannerRunner("securemesh-no-such-scanner --x", Generous).ScanAsync(_file, CancellationToken.None);
        Assert.Equal(ScanVerdict.Failed, result.Verdict);
        Assert.Equal("scanner 'securemesh-no-such-scanner' not found", result.Reason);

        var absolute = await new ScannerRunner(_dir.Combine("nope", "clamscan"), Generous).ScanAsync(_file, CancellationToken.None);
        Assert.Equal("scanner 'clamscan' not found", absolute.Reason);
    }

    [Fact]
    public async Task A_scanner_that_crashes_on_a_signal_holds_the_file()
    {
        var script = _dir.Script("crash", "echo 'about to crash' >&2; kill -SEGV $$");
        var result = await new ScannerRunner(script, Generous).ScanAsync(_file, CancellationToken.None);
        Assert.Equal(ScanVerdict.Failed, result.Verdict);
        Assert.Equal("scanner 'crash' was killed by signal 11: about to crash", result.Reason);
    }

    [Fact]
    public async Task No_scanner_configured_means_no_scan()
    {
        var result = await new ScannerRunner("  ", Generous).ScanAsync(_file, CancellationToken.None);
        Assert.Equal(ScanVerdict.NotConfigured, result.Verdict);
        Assert.True(result.Passed);
        Assert.False(new ScannerRunner(null, Generous).Enabled);
    }

    [Fact]
    public async Task Huge_output_does_not_matter_and_the_reason_stays_short()
    {
        var script = _dir.Script("noisy", "head -c 3000000 /dev/zero | tr '\\0' 'A'; echo; exit 1");
        var result = await new ScannerRunner(script, Generous).ScanAsync(_file, CancellationToken.None);
        Assert.Equal(ScanVerdict.Infected, result.Verdict);
        Assert.True(result.Reason!.Length < 300, result.Reason);
    }

    [Theory]
    [InlineData("clamscan --no-summary {}", new[] { "clamscan", "--no-summary", "{}" })]
    [InlineData("  '/opt/my scanner/scan'   -d \"a b\" x\\ y ", new[] { "/opt/my scanner/scan", "-d", "a b", "x y" })]
    [InlineData("a\"b c\"d 'it''s' \"q\\\"q\"", new[] { "ab cd", "its", "q\"q" })]
    [InlineData("''", new[] { "" })]
    public void Command_lines_split_like_a_shell(string line, string[] expected)
    {
        Assert.Equal(expected, ScannerRunner.SplitCommandLine(line));
    }

    [Fact]
    public void An_unclosed_quote_is_an_error()
    {
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => ScannerRunner.SplitCommandLine("scan 'oops")).Kind);
    }

    [Fact]
    public async Task A_broken_scanner_setting_holds_files_and_is_refused_by_config_validation()
    {
        using var db = Storage.SecureMeshDatabase.Open(_dir.Combine("home"));
        db.Config.Set(NodeSettings.Scanner, "clamscan 'unclosed");
        var runner = ScannerRunner.FromConfig(db.Config);
        Assert.True(runner.Enabled);
        var result = await runner.ScanAsync(_file, CancellationToken.None);
        Assert.Equal(ScanVerdict.Failed, result.Verdict);
        Assert.Equal("the scanner setting is invalid: the scanner command has an unclosed quote", result.Reason);
        Assert.Throws<SecureMeshException>(() => NodeSettings.Get(NodeSettings.Scanner).Normalize("clamscan 'unclosed"));
        Assert.Equal("clamscan --no-summary {}", NodeSettings.Get(NodeSettings.Scanner).Normalize(" clamscan --no-summary {} "));

        db.Config.Set(NodeSettings.ScannerTimeout, "7");
        db.Config.Set(NodeSettings.Scanner, "");
        var none = ScannerRunner.FromConfig(db.Config);
        Assert.False(none.Enabled);
        Assert.Equal(TimeSpan.FromSeconds(7), none.Timeout);
    }

    private static bool IsAlive(int pid)
    {
        var stat = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat";
        try
        {
            var text = File.ReadAllText(stat);
            // A zombie waiting for a reaper that never comes (PID 1 in a container) is dead for our purposes.
            var state = text[(text.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state != "Z" && state != "X";
        }
        catch (IOException)
        {
            return false;
        }
    }
}
