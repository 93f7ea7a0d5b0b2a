using System.Text.Json;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// <c>get</c> followed through a running node, interrupted with Ctrl+C (SIGINT) without a terminal: by default the
/// download is cancelled in the node; with <c>--detach</c> it keeps running there, and <c>transfers list</c> /
/// <c>transfers cancel</c> see and stop it.
/// </summary>
public sealed class GetInterruptTests() : TempFolderTest("securemesh-getint-")
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Ctrl_c_cancels_the_download_in_the_node_by_default_and_detach_leaves_it_running_for_transfers_cancel()
    {
        var (b, contentId, nodes) = await TwoNodesWithASlowFileAsync();
        await using var seeder = nodes.Seeder;
        await using var node = nodes.Downloader;

        // Without --detach: Ctrl+C cancels the download in the node.
        await using (var get = SecureMeshCli.Start(b, "get", contentId))
        {
            await UntilDownloadingAsync(b, contentId);
            get.Signal(2);
            Assert.Equal(130, await get.WaitForExitAsync(Patience));
            Assert.Contains("download cancelled", get.Output, StringComparison.Ordinal);
        }
        Assert.Equal("cancelled", (await TransferAsync(b, contentId)).GetProperty("state").GetString());

        // With --detach: it keeps running in the node, where transfers list shows it and transfers cancel stops it.
        await using (var get = SecureMeshCli.Start(b, "get", contentId, "--detach"))
        {
            await UntilDownloadingAsync(b, contentId);
            get.Signal(2);
            Assert.Equal(0, await get.WaitForExitAsync(Patience));
            Assert.Contains("keeps running in the node", get.Output, StringComparison.Ordinal);
            Assert.Contains($"securemesh transfers cancel {contentId}", get.Output, StringComparison.Ordinal);
        }
        var running = await TransferAsync(b, contentId);
        Assert.Equal("downloading", running.GetProperty("state").GetString());
        Assert.Equal(contentId, running.GetProperty("id").GetString());
        var table = await SecureMeshCli.RunAsync(b, "transfers", "list");
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains(contentId, table.Out, StringComparison.Ordinal);
        Assert.Contains("big.iso", table.Out, StringComparison.Ordinal);

        var cancel = await SecureMeshCli.RunAsync(b, "transfers", "cancel", contentId);
        Assert.True(cancel.ExitCode == 0, cancel.ToString());
        Assert.Contains($"cancelled the download of {contentId}", cancel.Out, StringComparison.Ordinal);
        var deadline = DateTime.UtcNow + Patience;
        while ((await TransferAsync(b, contentId)).GetProperty("state").GetString() != "cancelled")
        {
            Assert.True(DateTime.UtcNow < deadline, "the download was never cancelled:\n" + node.Output);
            await Task.Delay(100);
        }
        var again = await SecureMeshCli.RunAsync(b, "transfers", "cancel", contentId);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("no download of", again.Err, StringComparison.Ordinal);

        // A node nowhere: list says so, cancel is a clear failure.
        var elsewhere = Path.Combine(Root, "nobody");
        Assert.Contains("no node is running here", (await SecureMeshCli.RunAsync(elsewhere, "transfers", "list")).Out, StringComparison.Ordinal);
        Assert.Equal(1, (await SecureMeshCli.RunAsync(elsewhere, "transfers", "cancel", contentId)).ExitCode);
    }

    [Fact]
    public async Task On_a_terminal_ctrl_c_asks_and_leave_keeps_the_download_while_a_second_ctrl_c_cancels_it()
    {
        Assert.True(TmuxSession.IsAvailable, "tmux is needed for this test ('./test.sh' installs it)");
        var (b, contentId, nodes) = await TwoNodesWithASlowFileAsync();
        await using var seeder = nodes.Seeder;
        await using var node = nodes.Downloader;

        using (var get = TmuxSession.StartSecureMesh(["--home", b, "get", contentId], 160, 20))
        {
            get.WaitForText("downloading big.iso", Patience);
            get.SendKeys("C-c");
            get.WaitForText("[c]ancel the download, or [l]eave it running in the node? [c/l]", Patience);
            get.SendKeys("l");
            get.SendKeys("Enter");
            Assert.Equal(0, get.WaitForExit(Patience));
            Assert.Contains("keeps running in the node", get.Capture(), StringComparison.Ordinal);
        }
        Assert.Equal("downloading", (await TransferAsync(b, contentId)).GetProperty("state").GetString());

        using (var get = TmuxSession.StartSecureMesh(["--home", b, "get", contentId], 160, 20))
        {
            get.WaitForText("downloading big.iso", Patience);
            get.SendKeys("C-c");
            get.WaitForText("[c/l]", Patience);
            get.SendKeys("C-c");
            Assert.Equal(130, get.WaitForExit(Patience));
            Assert.Contains("download cancelled", get.Capture(), StringComparison.Ordinal);
        }
        Assert.Equal("cancelled", (await TransferAsync(b, contentId)).GetProperty("state").GetString());
    }

    private static async Task<JsonElement> TransferAsync(string home, string contentId)
    {
        var list = await SecureMeshCli.RunAsync(home, "transfers", "list", "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        using var doc = JsonDocument.Parse(list.Out);
        return doc.RootElement.EnumerateArray().Single(t => t.GetProperty("contentId").GetString() == contentId).Clone();
    }

    private static async Task UntilDownloadingAsync(string home, string contentId)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var list = await SecureMeshCli.RunAsync(home, "transfers", "list", "--json");
            Assert.True(list.ExitCode == 0 || DateTime.UtcNow < deadline, list.ToString());
            if (list.ExitCode != 0)
            {
                // A node slow to answer under load: ask again.
                await Task.Delay(250);
                continue;
            }
            using var doc = JsonDocument.Parse(list.Out);
            if (doc.RootElement.EnumerateArray().Any(t => t.GetProperty("contentId").GetString() == contentId
                && t.GetProperty("state").GetString() == "downloading" && t.GetProperty("bytesDone").GetInt64() > 0))
            {
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, "the download never got going: " + list.Out);
            await Task.Delay(100);
        }
    }

    private async Task<(string Home, string ContentId, (ChildProcess Seeder, ChildProcess Downloader) Nodes)> TwoNodesWithASlowFileAsync()
    {
        var a = Path.Combine(Root, "a");
        var b = Path.Combine(Root, "b");
        await OkAsync(a, "init");
        await OkAsync(b, "init");
        var (aId, bId) = (await PeerIdAsync(a), await PeerIdAsync(b));
        var aPort = FreePort();
        await OkAsync(a, "peers", "add", bId, "--trust");
        await OkAsync(b, "peers", "add", aId, "--addr", $"127.0.0.1:{aPort}", "--trust");
        await OkAsync(a, "config", "set", "chunk-size", "16k");
        // Slow enough that the download is still running when the test interrupts it: 4 MiB at 64 KiB/s.
        await OkAsync(a, "config", "set", "upload-limit", "64k");
        foreach (var home in new[] { a, b })
        {
            await OkAsync(home, "config", "set", "discovery", "off");
            await OkAsync(home, "config", "set", "download-dir", Path.Combine(Root, "downloads"));
        }
        await OkAsync(b, "config", "set", "listen", "127.0.0.1:0");
        var data = new byte[4 << 20];
        new Random(7).NextBytes(data);
        var file = Path.Combine(Root, "big.iso");
        await File.WriteAllBytesAsync(file, data);
        await OkAsync(a, "share", "add", file);
        using var shares = JsonDocument.Parse((await SecureMeshCli.RunAsync(a, "share", "list", "--json")).Out);
        var contentId = shares.RootElement.GetProperty("files")[0].GetProperty("contentId").GetString()!;

        var seeder = SecureMeshCli.Start(a, "run", "--listen", $"127.0.0.1:{aPort}");
        await seeder.WaitForLineAsync("listening on");
        var downloader = SecureMeshCli.Start(b, "run");
        await downloader.WaitForLineAsync("listening on");
        return (b, contentId, (seeder, downloader));
    }
}
