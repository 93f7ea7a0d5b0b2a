using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace SecureMesh.IntegrationTests;

/// <summary>Issue 15: a blocked peer learns it, seen from both sides in real terminals (tmux).</summary>
public sealed partial class RefusalTmuxTests(ITestOutputHelper output) : TempFolderTest("securemesh-refusal-")
{
    [GeneratedRegex(@"refused (12D3KooW\w+) from 127\.0\.0\.1:\d+: peer is blocked")]
    private static partial Regex AliceRefusalLine();

    [GeneratedRegex(@"refuses this node \(it has blocked us; refusal (\d+) in a row\); next attempt in (\S+)")]
    private static partial Regex BobRefusedLine();

    [Fact]
    public async Task Alice_blocks_Bob_and_both_terminals_show_it_Bob_backs_off_and_Alice_logs_it_once()
    {
        Assert.True(TmuxSession.IsAvailable, "tmux is needed for this test ('.ci/run' installs it)");
        var alice = Path.Combine(Root, "alice");
        var bob = Path.Combine(Root, "bob");
        await OkAsync(alice, "init");
        await OkAsync(bob, "init");
        var (aliceId, bobId) = (await PeerIdAsync(alice), await PeerIdAsync(bob));
        var alicePort = FreePort();
        foreach (var home in new[] { alice, bob })
        {
            await OkAsync(home, "config", "set", "discovery", "off");
        }
        await OkAsync(bob, "config", "set", "listen", "127.0.0.1:0");
        await OkAsync(bob, "peers", "add", aliceId, "--addr", $"127.0.0.1:{alicePort}", "--name", "alice", "--trust");
        await OkAsync(alice, "peers", "add", bobId, "--name", "bob", "--trust");
        await OkAsync(alice, "peers", "block", bobId, "--reason", "a private reason");

        using var aliceTerm = TmuxSession.StartSecureMesh(["--home", alice, "run", "--listen", $"127.0.0.1:{alicePort}"], 250, 16);
        aliceTerm.WaitForText("listening on");
        using var bobTerm = TmuxSession.StartSecureMesh(["--home", bob, "run"], 250, 16);
        bobTerm.WaitForText("listening on");

        // Bob's node hears "refused" and backs off: 2 s, then 4 s, then 8 s.
        bobTerm.WaitForText("refusal 3 in a row", TimeSpan.FromSeconds(40));
        var bobScreen = bobTerm.Capture();
        var aliceScreen = aliceTerm.Capture();

        var waits = BobRefusedLine().Matches(bobScreen).Select(m => (Count: int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Wait: m.Groups[2].Value)).ToList();
        Assert.Equal([(1, "00:00:02"), (2, "00:00:04"), (3, "00:00:08")], waits.Take(3));
        Assert.DoesNotContain("a private reason", bobScreen, StringComparison.Ordinal);
        // Alice's node refused three times but wrote one line (once a minute per address).
        var refusals = AliceRefusalLine().Matches(aliceScreen);
        Assert.Equal(bobId, Assert.Single(refusals).Groups[1].Value);

        // Bob's peers list and status say "refusing us"; the state stays "trusted".
        using var bobShell = TmuxSession.Start(["sh", "-c",
            $"{SecureMeshProgram.ShellCommand(["--home", bob, "peers", "list"])}; {SecureMeshProgram.ShellCommand(["--home", bob, "status"])}"], 250, 16);
        var shell = bobShell.WaitForText("transfers:", TimeSpan.FromSeconds(60));
        Assert.Contains("trusted (refusing us)", shell, StringComparison.Ordinal);
        Assert.Contains($"refusing us: {aliceId} (alice)", shell, StringComparison.Ordinal);
        var list = await SecureMeshCli.RunAsync(bob, "peers", "list", "--json");
        using (var doc = JsonDocument.Parse(list.Out))
        {
            var entry = doc.RootElement.EnumerateArray().Single(p => p.GetProperty("peerId").GetString() == aliceId);
            Assert.True(entry.GetProperty("refusingUs").GetBoolean());
            Assert.Equal("trusted", entry.GetProperty("state").GetString());
        }

        output.WriteLine("==== Alice: securemesh run (she blocked Bob) ====");
        output.WriteLine(aliceTerm.Capture().TrimEnd());
        output.WriteLine("==== Bob: securemesh run ====");
        output.WriteLine(bobTerm.Capture().TrimEnd());
        output.WriteLine("==== Bob: securemesh peers list; securemesh status ====");
        output.WriteLine(shell.TrimEnd());
    }
}
