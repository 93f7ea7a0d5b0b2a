using System.Text.Json;
using SecureMesh.Cli.Commands;

namespace SecureMesh.Cli.Tests;

public sealed class ShareCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();

    [Fact]
    public void Share_add_indexes_a_folder_recursively_and_only_changed_files_again()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        Assert.Equal(0, _cli.Home_("config", "set", "chunk-size", "16k").ExitCode);
        var folder = Path.Combine(_cli.Root, "music");
        Directory.CreateDirectory(Path.Combine(folder, "live"));
        File.WriteAllBytes(Path.Combine(folder, "a.flac"), new byte[100_000]);
        File.WriteAllBytes(Path.Combine(folder, "live", "b.flac"), new byte[50_000]);

        var first = _cli.Home_("share", "add", folder, "--json");
        Assert.True(first.ExitCode == 0, first.ToString());
        var json = JsonDocument.Parse(first.Out).RootElement;
        Assert.Equal((2, 2, 0), (json.GetProperty("files").GetInt32(), json.GetProperty("indexed").GetInt32(), json.GetProperty("unchanged").GetInt32()));

        File.WriteAllBytes(Path.Combine(folder, "live", "b.flac"), new byte[60_000]);
        var second = JsonDocument.Parse(_cli.Home_("share", "add", folder, "--json").Out).RootElement;
        Assert.Equal((1, 1), (second.GetProperty("indexed").GetInt32(), second.GetProperty("unchanged").GetInt32()));

        var list = JsonDocument.Parse(_cli.Home_("share", "list", "--json").Out).RootElement;
        Assert.Equal(folder, list.GetProperty("shares")[0].GetString());
        var files = list.GetProperty("files").EnumerateArray().ToList();
        Assert.Equal(2, files.Count);
        Assert.All(files, f => Assert.StartsWith("b3:", f.GetProperty("contentId").GetString(), StringComparison.Ordinal));

        var text = _cli.Home_("share", "list");
        Assert.Contains("b.flac", text.Out, StringComparison.Ordinal);

        Assert.Equal(0, _cli.Home_("share", "remove", folder).ExitCode);
        Assert.Empty(JsonDocument.Parse(_cli.Home_("share", "list", "--json").Out).RootElement.GetProperty("files").EnumerateArray());
        var again = _cli.Home_("share", "remove", folder);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("is not shared", again.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Share_add_of_a_missing_path_fails_with_one_line()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var r = _cli.Home_("share", "add", Path.Combine(_cli.Root, "nope"));
        Assert.Equal(1, r.ExitCode);
        Assert.Single(r.ErrLines);
    }

    [Fact]
    public void Get_with_a_malformed_content_id_fails_before_starting_anything()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var r = _cli.Home_("get", "b3:nope");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("invalid content ID", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Get_without_reachable_peers_says_so()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var r = _cli.Home_("get", "b3:" + new string('a', 52));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no trusted peer is reachable", r.Err, StringComparison.Ordinal);
    }

    public void Dispose() => _cli.Dispose();
}

public sealed class ProgressLineTests
{
    [Fact]
    public void On_a_narrow_terminal_the_line_is_cut_so_it_never_wraps_and_a_shorter_line_blanks_the_longer_one()
    {
        var err = new StringWriter();
        var line = new ProgressLine(err, () => 40);
        line.Update("indexing a file with a rather long name.mkv  12.0 / 700.0 MiB  1234 MB/s", force: true);
        line.Update("indexing short  1.0 / 2.0 MiB  5 MB/s", force: true);
        line.Done();
        var frames = err.ToString().TrimEnd('\n').Split('\r', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, frames.Length);
        // Never wider than the terminal minus one column: nothing wraps onto a row that \r cannot reach.
        Assert.All(frames, f => Assert.True(f.Length <= 39, $"{f.Length}: '{f}'"));
        Assert.EndsWith("…", frames[0], StringComparison.Ordinal);
        // The second frame covers all of the first, so no tail of it (such as "/s") is left.
        Assert.True(frames[1].Length >= frames[0].Length);
        Assert.Equal("indexing short  1.0 / 2.0 MiB  5 MB/s", frames[1].TrimEnd());
    }

    [Fact]
    public void Redirected_output_is_not_cut()
    {
        var err = new StringWriter();
        var line = new ProgressLine(err, () => 0);
        var text = new string('x', 300) + " MB/s";
        line.Update(text, force: true);
        Assert.Equal("\r" + text, err.ToString());
    }
}
