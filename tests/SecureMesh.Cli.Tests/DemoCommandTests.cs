using System.Text.Json;
using System.Text.RegularExpressions;

namespace SecureMesh.Cli.Tests;

public sealed partial class DemoCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();

    [Fact]
    public void Demo_shares_from_two_seeders_fetches_in_the_third_and_deletes_its_folder()
    {
        // --home is given only to prove it is ignored: the demo must not create or touch it.
        var result = _cli.Run("--home", _cli.Home, "demo", "--size", "3m");
        Assert.True(result.ExitCode == 0, result.ToString());

        var folder = DemoFolder(result.Out);
        Assert.False(Directory.Exists(folder), $"the demo folder {folder} should be deleted");
        Assert.False(Directory.Exists(_cli.Home), "the demo must not touch the user's data directory");

        Assert.Equal(3, PeerCreated().Matches(result.Out).Count);
        Assert.Contains("trust established", result.Out, StringComparison.Ordinal);
        Assert.Equal(3, Regex.Matches(result.Out, "short authentication string \"[a-z ]+\" \\(same on both sides\\)").Count);
        Assert.Matches("content ID b3:[a-z0-9]+", result.Out);
        Assert.Contains("  seeder A: 12D3KooW", result.Out, StringComparison.Ordinal);
        Assert.Contains("  seeder B: 12D3KooW", result.Out, StringComparison.Ordinal);
        Assert.Contains("verified: every chunk checked on arrival", result.Out, StringComparison.Ordinal);
        Assert.Contains("released from quarantine", result.Out, StringComparison.Ordinal);
        Assert.Contains("byte-for-byte comparison with the original: identical (3,145,728 bytes)", result.Out, StringComparison.Ordinal);
        Assert.Contains("demo finished in", result.Out, StringComparison.Ordinal);
        Assert.Contains("peer(s) in use", result.Err, StringComparison.Ordinal);

        // The seeders' counts are explained and add up as printed; together they answered at least every chunk.
        var served = Regex.Match(result.Out + result.Err, @"chunks fetched: (\d+); chunk requests answered: A (\d+) \+ B (\d+) = (\d+) \(C sent (\d+);");
        Assert.True(served.Success, result.ToString());
        var n = served.Groups.Values.Skip(1).Select(g => long.Parse(g.Value, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(12, n[0]); // 3 MiB in 256 KiB chunks
        Assert.Equal(n[1] + n[2], n[3]);
        Assert.True(n[3] >= n[0], result.ToString());
        Assert.True(n[4] >= n[0], result.ToString());
    }

    [Fact]
    public void Demo_json_prints_a_summary_only_on_stdout()
    {
        var result = _cli.Run("demo", "--size", "3MiB", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());

        var json = JsonDocument.Parse(result.Out).RootElement;
        Assert.StartsWith("b3:", json.GetProperty("contentId").GetString(), StringComparison.Ordinal);
        Assert.Equal(3L << 20, json.GetProperty("size").GetInt64());
        Assert.True(json.GetProperty("verified").GetBoolean());
        Assert.True(json.GetProperty("released").GetBoolean());
        Assert.True(json.GetProperty("identical").GetBoolean());
        Assert.InRange(json.GetProperty("seconds").GetDouble(), 0, 60);
        var seeders = json.GetProperty("seeders").EnumerateArray().ToList();
        Assert.Equal(["A", "B"], seeders.Select(s => s.GetProperty("name").GetString()));
        Assert.All(seeders, s => Assert.StartsWith("12D3KooW", s.GetProperty("peerId").GetString(), StringComparison.Ordinal));
        Assert.False(json.GetProperty("kept").GetBoolean());
        Assert.False(Directory.Exists(json.GetProperty("folder").GetString()));
        // The steps still show, on stderr.
        Assert.Contains("released from quarantine", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Demo_keep_leaves_the_folder_and_says_where()
    {
        var result = _cli.Run("demo", "--size", "64k", "--keep");
        Assert.True(result.ExitCode == 0, result.ToString());
        var folder = DemoFolder(result.Out);
        try
        {
            Assert.Contains($"kept the demo folder: {folder}", result.Out, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(folder, "C", "received", "securemesh-demo-sample.bin")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData("lots")]
    [InlineData("0")]
    [InlineData("2g")]
    public void Demo_refuses_a_bad_size_with_one_line(string size)
    {
        var result = _cli.Run("demo", "--size", size);
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.ErrLines);
        Assert.StartsWith("error: --size", line, StringComparison.Ordinal);
        Assert.Empty(result.Out);
    }

    public void Dispose() => _cli.Dispose();

    private static string DemoFolder(string output)
    {
        var match = FolderLine().Match(output);
        Assert.True(match.Success, output);
        return match.Groups[1].Value;
    }

    [GeneratedRegex(@"demo folder: (\S+) \(")]
    private static partial Regex FolderLine();

    [GeneratedRegex(@"peer [ABC] created: Peer ID 12D3KooW\w+  fingerprint \S+  listening on 127\.0\.0\.1:\d+")]
    private static partial Regex PeerCreated();
}
