using System.Text.Json;

namespace SecureMesh.IntegrationTests;

/// <summary>Real <c>securemesh</c> processes on loopback: <c>share add</c>, <c>run</c>, <c>search</c>, <c>get</c>.</summary>
public sealed class ProcessTransferTests() : TempFolderTest("securemesh-proc-")
{
    [Fact]
    public async Task A_running_node_serves_a_shared_file_to_get_in_another_process()
    {
        var a = Path.Combine(Root, "a");
        var b = Path.Combine(Root, "b");
        Assert.Equal(0, (await Run(a, "init")).ExitCode);
        Assert.Equal(0, (await Run(b, "init")).ExitCode);
        var aId = await PeerIdAsync(a);
        var bId = await PeerIdAsync(b);
        var port = FreePort();
        Assert.Equal(0, (await Run(a, "peers", "add", bId, "--trust")).ExitCode);
        Assert.Equal(0, (await Run(b, "peers", "add", aId, "--addr", $"127.0.0.1:{port}", "--trust")).ExitCode);
        Assert.Equal(0, (await Run(a, "config", "set", "chunk-size", "64k")).ExitCode);

        var file = Path.Combine(Root, "report final.pdf");
        var data = new byte[700_000];
        new Random(11).NextBytes(data);
        await File.WriteAllBytesAsync(file, data);
        var share = await Run(a, "share", "add", file, "--json");
        Assert.True(share.ExitCode == 0, share.ToString());
        var contentId = JsonDocument.Parse((await Run(a, "share", "list", "--json")).Out).RootElement.GetProperty("files")[0].GetProperty("contentId").GetString()!;

        await using var node = SecureMeshCli.Start(a, "run", "--listen", $"127.0.0.1:{port}");
        await node.WaitForLineAsync("listening on");

        var search = await Run(b, "search", "report", "--json");
        Assert.True(search.ExitCode == 0, search.ToString());
        var hit = JsonDocument.Parse(search.Out).RootElement[0];
        Assert.Equal(contentId, hit.GetProperty("contentId").GetString());
        Assert.Equal(aId, hit.GetProperty("peers")[0].GetString());

        var outDir = Path.Combine(Root, "out");
        var get = await Run(b, "get", contentId, "--out", outDir);
        Assert.True(get.ExitCode == 0, get.ToString());
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(outDir, "report final.pdf")));
        Assert.Contains("100.0%", get.Err, StringComparison.Ordinal);

        // A scanner that reports every file infected: the download is held and get exits 3 with the reason.
        Assert.Equal(0, (await Run(b, "config", "set", "scanner", "/bin/false")).ExitCode);
        var held = await Run(b, "get", contentId, "--out", outDir, "--json");
        Assert.True(held.ExitCode == 3, held.ToString());
        Assert.Equal("held", JsonDocument.Parse(held.Out).RootElement.GetProperty("state").GetString());

    }

    [Fact]
    public async Task A_get_killed_mid_transfer_resumes_without_refetching_verified_chunks()
    {
        var a = Path.Combine(Root, "a");
        var b = Path.Combine(Root, "b");
        Assert.Equal(0, (await Run(a, "init")).ExitCode);
        Assert.Equal(0, (await Run(b, "init")).ExitCode);
        var port = FreePort();
        Assert.Equal(0, (await Run(a, "peers", "add", await PeerIdAsync(b), "--trust")).ExitCode);
        Assert.Equal(0, (await Run(b, "peers", "add", await PeerIdAsync(a), "--addr", $"127.0.0.1:{port}", "--trust")).ExitCode);
        Assert.Equal(0, (await Run(a, "config", "set", "chunk-size", "16k")).ExitCode);
        Assert.Equal(0, (await Run(a, "config", "set", "upload-limit", "512k")).ExitCode);
        const int Chunks = 160;
        var file = Path.Combine(Root, "movie.mkv");
        var data = new byte[Chunks * 16384];
        new Random(12).NextBytes(data);
        await File.WriteAllBytesAsync(file, data);
        Assert.Equal(0, (await Run(a, "share", "add", file)).ExitCode);
        var contentId = JsonDocument.Parse((await Run(a, "share", "list", "--json")).Out).RootElement.GetProperty("files")[0].GetProperty("contentId").GetString()!;
        await using var node = SecureMeshCli.Start(a, "run", "--listen", $"127.0.0.1:{port}");
        await node.WaitForLineAsync("listening on");

        var outDir = Path.Combine(Root, "out");
        await using var first = SecureMeshCli.Start(b, "get", contentId, "--out", outDir);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (VerifiedChunks(b, contentId) < 40)
        {
            Assert.True(DateTime.UtcNow < deadline, "no chunks became durable");
            Assert.False(first.HasExited, "get finished before it could be killed");
            await Task.Delay(50);
        }
        first.Signal(9); // SIGKILL: no chance to flush or clean up
        await first.WaitForExitAsync();
        var durable = VerifiedChunks(b, contentId);
        Assert.InRange(durable, 40, Chunks - 1);

        var second = await Run(b, "get", contentId, "--out", outDir, "--json");
        Assert.True(second.ExitCode == 0, second.ToString());
        var json = JsonDocument.Parse(second.Out).RootElement;
        Assert.Equal(durable, json.GetProperty("resumedChunks").GetInt64());
        Assert.Equal(Chunks - durable, json.GetProperty("chunkRequests").GetInt64());
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(outDir, "movie.mkv")));
    }

    private static int VerifiedChunks(string home, string contentId)
    {
        using var db = Storage.SecureMeshDatabase.Open(home);
        return db.Downloads.VerifiedChunks(contentId).Count;
    }

    private static Task<CommandResult> Run(string home, params string[] args) => SecureMeshCli.RunAsync(home, args);
}
