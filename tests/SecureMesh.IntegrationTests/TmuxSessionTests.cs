using System.Text.Json;

namespace SecureMesh.IntegrationTests;

/// <summary><c>securemesh tui</c> in a real terminal (tmux), hosting real nodes.</summary>
public sealed class TmuxSessionTests() : TempFolderTest("securemesh-tmux-")
{
    private static async Task<string> JsonFieldAsync(string home, string field, params string[] args)
    {
        var result = await SecureMeshCli.RunAsync(home, [.. args, "--json"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Out);
        var value = doc.RootElement.GetProperty(field);
        return value.ValueKind == JsonValueKind.Array ? value[0].GetString()! : value.GetString()!;
    }

    /// <summary>A data directory whose node listens on an ephemeral loopback port, without LAN beacons.</summary>
    private async Task<string> NewHomeAsync(string name)
    {
        var home = Path.Combine(Root, name);
        await OkAsync(home, "init");
        await OkAsync(home, "config", "set", "listen", "127.0.0.1:0");
        await OkAsync(home, "config", "set", "discovery", "off");
        await OkAsync(home, "config", "set", "download-dir", Path.Combine(Root, name + "-downloads"));
        return home;
    }

    [Theory]
    [InlineData(160, 48)]
    [InlineData(120, 40)]
    [InlineData(80, 24)]
    public async Task Tui_shows_the_peer_id_and_every_view_and_quits_cleanly_on_ctrl_q(int width, int height)
    {
        Assert.True(TmuxSession.IsAvailable, "tmux is needed for this test ('.ci/run' installs it)");
        var home = await NewHomeAsync("solo");
        var peerId = await JsonFieldAsync(home, "peerId", "id");

        using var tmux = TmuxSession.StartSecureMesh(["--home", home, "tui"], width, height);
        tmux.WaitForText(peerId[..20]);
        tmux.WaitForText("node running");
        foreach (var (key, title) in new[] { ("F2", "Shares"), ("F3", "Search"), ("F4", "Transfers"), ("F5", "Quarantine"), ("F6", "Log"), ("F1", "Peers") })
        {
            tmux.SendKeys(key);
            tmux.WaitForText($"[{key} {title}]");
        }
        tmux.SendKeys("C-q");
        Assert.Equal(0, tmux.WaitForExit());
        // The terminal is handed back: no UI frame is left on the screen.
        Assert.DoesNotContain("[F1 Peers]", tmux.Capture(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Share_search_fetch_and_release_with_keys_alone_across_two_terminal_uis()
    {
        Assert.True(TmuxSession.IsAvailable, "tmux is needed for this test ('.ci/run' installs it)");
        var alice = await NewHomeAsync("alice");
        var bob = await NewHomeAsync("bob");
        // Bob's scanner flags everything, so the file waits in quarantine for a release by hand.
        await OkAsync(bob, "config", "set", "scanner", "/bin/false");
        var aliceId = await JsonFieldAsync(alice, "peerId", "id");
        var bobId = await JsonFieldAsync(bob, "peerId", "id");
        var folder = Directory.CreateDirectory(Path.Combine(Root, "to share")).FullName;
        var data = new byte[1_500_000];
        new Random(8).NextBytes(data);
        await File.WriteAllBytesAsync(Path.Combine(folder, "sunset timelapse.mp4"), data);

        using var aliceUi = TmuxSession.StartSecureMesh(["--home", alice, "tui"], 120, 40);
        aliceUi.WaitForText("node running");
        var alicePort = (await JsonFieldAsync(alice, "listen", "status")).Split(':')[1];
        await OkAsync(alice, "peers", "add", bobId, "--trust");
        await OkAsync(bob, "peers", "add", aliceId, "--addr", $"127.0.0.1:{alicePort}", "--trust", "--name", "alice");

        // Alice shares the folder from her UI.
        aliceUi.SendKeys("F2");
        aliceUi.WaitForText("[F2 Shares]");
        aliceUi.SendKeys("a");
        aliceUi.WaitForText("Add share");
        aliceUi.SendKeys(folder, literal: true);
        // Keys sent before the dialog's field has the focus would be lost: wait until the path shows.
        aliceUi.WaitForText(folder);
        aliceUi.SendKeys("Enter");
        aliceUi.WaitForText("done", TimeSpan.FromSeconds(30));

        // Bob's UI connects to Alice, finds the file, fetches it.
        using var bobUi = TmuxSession.StartSecureMesh(["--home", bob, "tui"], 120, 40);
        bobUi.WaitForText("Connections 1", TimeSpan.FromSeconds(30));
        bobUi.SendKeys("F3");
        bobUi.WaitForText("[F3 Search]");
        bobUi.SendKeys("sunset", literal: true);
        bobUi.WaitForText("Find: sunset");
        bobUi.SendKeys("Enter");
        bobUi.WaitForText("1 result(s)", TimeSpan.FromSeconds(30));
        bobUi.SendKeys("f");
        bobUi.WaitForText("see Transfers");
        bobUi.SendKeys("F4");
        bobUi.WaitForText("held in quarantine", TimeSpan.FromSeconds(30));

        // Held by the scanner: Bob releases it by hand into a folder of his choice.
        bobUi.SendKeys("F5");
        bobUi.WaitForText("scanner 'false' flagged the file");
        bobUi.SendKeys("r");
        bobUi.WaitForText("To folder");
        var outDir = Directory.CreateDirectory(Path.Combine(Root, "released")).FullName;
        bobUi.SendKeys(outDir, literal: true);
        bobUi.WaitForText(outDir);
        bobUi.SendKeys("Enter");
        bobUi.WaitForText("│released│");
        var released = Path.Combine(outDir, "sunset timelapse.mp4");
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!File.Exists(released) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        Assert.Equal(data, await File.ReadAllBytesAsync(released));

        bobUi.SendKeys("C-q");
        Assert.Equal(0, bobUi.WaitForExit());
        aliceUi.SendKeys("C-q");
        Assert.Equal(0, aliceUi.WaitForExit());
    }
}
