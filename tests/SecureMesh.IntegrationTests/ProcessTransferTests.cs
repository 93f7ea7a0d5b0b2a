using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace SecureMesh.IntegrationTests;

/// <summary>Real <c>securemesh</c> processes on loopback: <c>share add</c>, <c>run</c>, <c>search</c>, <c>get</c>.</summary>
public sealed class ProcessTransferTests : IDisposable
{
    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "securemesh.dll");
    private readonly string _root = Directory.CreateTempSubdirectory("securemesh-proc-").FullName;
    private readonly List<Process> _running = [];

    [Fact]
    public async Task A_running_node_serves_a_shared_file_to_get_in_another_process()
    {
        var a = Path.Combine(_root, "a");
        var b = Path.Combine(_root, "b");
        Assert.Equal(0, Run(a, "init").Code);
        Assert.Equal(0, Run(b, "init").Code);
        var aId = PeerIdOf(a);
        var bId = PeerIdOf(b);
        var port = FreePort();
        Assert.Equal(0, Run(a, "peers", "add", bId, "--trust").Code);
        Assert.Equal(0, Run(b, "peers", "add", aId, "--addr", $"127.0.0.1:{port}", "--trust").Code);
        Assert.Equal(0, Run(a, "config", "set", "chunk-size", "64k").Code);

        var file = Path.Combine(_root, "report final.pdf");
        var data = new byte[700_000];
        new Random(11).NextBytes(data);
        await File.WriteAllBytesAsync(file, data);
        var share = Run(a, "share", "add", file, "--json");
        Assert.True(share.Code == 0, share.ToString());
        var contentId = JsonDocument.Parse(Run(a, "share", "list", "--json").Out).RootElement.GetProperty("files")[0].GetProperty("contentId").GetString()!;

        var node = Start(a, "run", "--listen", $"127.0.0.1:{port}");
        await WaitForLineAsync(node, "listening on");

        var search = Run(b, "search", "report", "--json");
        Assert.True(search.Code == 0, search.ToString());
        var hit = JsonDocument.Parse(search.Out).RootElement[0];
        Assert.Equal(contentId, hit.GetProperty("contentId").GetString());
        Assert.Equal(aId, hit.GetProperty("peers")[0].GetString());

        var outDir = Path.Combine(_root, "out");
        var get = Run(b, "get", contentId, "--out", outDir);
        Assert.True(get.Code == 0, get.ToString());
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(outDir, "report final.pdf")));
        Assert.Contains("100.0%", get.Err, StringComparison.Ordinal);

        // A scanner that reports every file infected: the download is held and get exits 3 with the reason.
        Assert.Equal(0, Run(b, "config", "set", "scanner", "/bin/false").Code);
        var held = Run(b, "get", contentId, "--out", outDir, "--json");
        Assert.True(held.Code == 3, held.ToString());
        Assert.Equal("held", JsonDocument.Parse(held.Out).RootElement.GetProperty("state").GetString());

        node.Kill(entireProcessTree: true);
    }

    [Fact]
    public async Task A_get_killed_mid_transfer_resumes_without_refetching_verified_chunks()
    {
        var a = Path.Combine(_root, "a");
        var b = Path.Combine(_root, "b");
        Assert.Equal(0, Run(a, "init").Code);
        Assert.Equal(0, Run(b, "init").Code);
        var port = FreePort();
        Assert.Equal(0, Run(a, "peers", "add", PeerIdOf(b), "--trust").Code);
        Assert.Equal(0, Run(b, "peers", "add", PeerIdOf(a), "--addr", $"127.0.0.1:{port}", "--trust").Code);
        Assert.Equal(0, Run(a, "config", "set", "chunk-size", "16k").Code);
        Assert.Equal(0, Run(a, "config", "set", "upload-limit", "512k").Code);
        const int Chunks = 160;
        var file = Path.Combine(_root, "movie.mkv");
        var data = new byte[Chunks * 16384];
        new Random(12).NextBytes(data);
        await File.WriteAllBytesAsync(file, data);
        Assert.Equal(0, Run(a, "share", "add", file).Code);
        var contentId = JsonDocument.Parse(Run(a, "share", "list", "--json").Out).RootElement.GetProperty("files")[0].GetProperty("contentId").GetString()!;
        var node = Start(a, "run", "--listen", $"127.0.0.1:{port}");
        await WaitForLineAsync(node, "listening on");

        var outDir = Path.Combine(_root, "out");
        var first = Start(b, "get", contentId, "--out", outDir);
        _ = first.StandardOutput.ReadToEndAsync();
        _ = first.StandardError.ReadToEndAsync();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (VerifiedChunks(b, contentId) < 40)
        {
            Assert.True(DateTime.UtcNow < deadline, "no chunks became durable");
            Assert.False(first.HasExited, "get finished before it could be killed");
            await Task.Delay(50);
        }
        first.Kill(entireProcessTree: true); // SIGKILL: no chance to flush or clean up
        await first.WaitForExitAsync();
        var durable = VerifiedChunks(b, contentId);
        Assert.InRange(durable, 40, Chunks - 1);

        var second = Run(b, "get", contentId, "--out", outDir, "--json");
        Assert.True(second.Code == 0, second.ToString());
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

    private static string PeerIdOf(string home) =>
        JsonDocument.Parse(Run(home, "id", "--json").Out).RootElement.GetProperty("peerId").GetString()!;

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static ProcessStartInfo Info(string home, string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        info.ArgumentList.Add(Dll);
        info.ArgumentList.Add("--home");
        info.ArgumentList.Add(home);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        info.Environment.Remove("SECUREMESH_HOME");
        info.Environment.Remove("SECUREMESH_PASSPHRASE");
        return info;
    }

    private static Result Run(string home, params string[] args)
    {
        using var p = Process.Start(Info(home, args))!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"securemesh {string.Join(' ', args)} did not finish");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    private Process Start(string home, params string[] args)
    {
        var p = Process.Start(Info(home, args))!;
        _running.Add(p);
        return p;
    }

    private static async Task WaitForLineAsync(Process p, string text)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (await p.StandardOutput.ReadLineAsync(cts.Token) is { } line)
        {
            if (line.Contains(text, StringComparison.Ordinal))
            {
                // Keep draining so the node never blocks on a full pipe.
                _ = p.StandardOutput.ReadToEndAsync(CancellationToken.None);
                _ = p.StandardError.ReadToEndAsync(CancellationToken.None);
                return;
            }
        }
        throw new InvalidOperationException($"the node exited before printing '{text}': {await p.StandardError.ReadToEndAsync(CancellationToken.None)}");
    }

    public void Dispose()
    {
        foreach (var p in _running)
        {
            try
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                    p.WaitForExit(5000);
                }
            }
            catch (InvalidOperationException)
            {
            }
            p.Dispose();
        }
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private sealed record Result(int Code, string Out, string Err)
    {
        public override string ToString() => $"exit {Code}\nstdout:\n{Out}\nstderr:\n{Err}";
    }
}
