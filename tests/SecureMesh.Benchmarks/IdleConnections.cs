using System.Diagnostics;
using System.Globalization;
using System.Net;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.Identify;
using SecureMesh.Core.Libp2p.Ping;
using SecureMesh.Node;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Benchmarks;

/// <summary>
/// <c>idle-connections N [SECONDS] [HOST]</c>: the node's memory with N idle authenticated sessions (libp2p connections:
/// multistream-select, Noise, yamux; each client pings once so the node's side of every session is fully set up). By
/// default (HOST <c>run</c>) the node is the real <c>securemesh run</c> process (<c>$SECUREMESH_DLL</c>, e.g. the
/// published, precompiled build the README installs, else the securemesh.dll beside this program; with its own runtime
/// settings, control API and discovery, <c>max-connections</c> set to N + 16), i.e. what a user's node holds; HOST <c>host</c> runs a bare <see cref="MeshNode"/> in a child of this program instead, which prints
/// where its managed memory is. This process holds the N trusted client connections.
/// </summary>
internal static class IdleConnections
{
    public static async Task RunAsync(int count, int seconds, bool realNode)
    {
        var home = Directory.CreateTempSubdirectory("securemesh-idle-").FullName;
        var clients = new List<NodeIdentity>(count);
        using (var server = NodeIdentity.Generate())
        {
            IdentityStore.Save(home, server, passphrase: null, force: true);
        }
        using (var db = SecureMeshDatabase.Open(home))
        {
            for (var i = 0; i < count; i++)
            {
                var client = NodeIdentity.Generate();
                clients.Add(client);
                db.Trust.AddPeer(client.PeerId, trusted: true);
            }
            db.Config.Set(NodeSettings.MaxConnections, (count + 16).ToString(CultureInfo.InvariantCulture));
        }
        var serverId = IdentityStore.LoadPeerId(home);
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } dotnet ? dotnet : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = realNode,
            UseShellExecute = false,
        };
        var port = realNode ? FreePort() : 0;
        string[] arguments = realNode
            ? [Environment.GetEnvironmentVariable("SECUREMESH_DLL") is { Length: > 0 } dll ? dll : Path.Combine(AppContext.BaseDirectory, "securemesh.dll"),
                "--home", home, "run", "--listen", $"127.0.0.1:{port}"]
            : [typeof(IdleConnections).Assembly.Location, "idle-node-host", home, count.ToString(CultureInfo.InvariantCulture)];
        foreach (var arg in arguments)
        {
            start.ArgumentList.Add(arg);
        }
        using var host = Process.Start(start)!;
        var lastReport = "";
        if (realNode)
        {
            var started = new TaskCompletionSource();
            host.OutputDataReceived += (_, e) =>
            {
                if (e.Data?.Contains("control socket", StringComparison.Ordinal) == true)
                {
                    started.TrySetResult();
                }
            };
            host.ErrorDataReceived += (_, _) => { };
            host.BeginOutputReadLine();
            host.BeginErrorReadLine();
            await started.Task.WaitAsync(TimeSpan.FromSeconds(60));
            lastReport = "securemesh run";
        }
        else
        {
            port = int.Parse(await host.StandardOutput.ReadLineAsync() ?? "0", CultureInfo.InvariantCulture);
            _ = Task.Run(async () =>
            {
                while (await host.StandardOutput.ReadLineAsync() is { } line)
                {
                    lastReport = line;
                }
            });
        }
        await Task.Delay(1500);
        Console.WriteLine($"node pid {host.Id} on 127.0.0.1:{port}; RSS before connections: {Rss(host.Id) / 1024.0 / 1024:0.0} MB {RssSplit(host.Id)} ({lastReport})");

        var connections = new PeerLink[count];
        var answers = new Task<bool>[count];
        var stopwatch = Stopwatch.StartNew();
        // Eight at a time: the node caps handshakes in progress per address at 16.
        using var gate = new SemaphoreSlim(8);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                connections[i] = await PeerLink.DialAsync(clients[i], new IPEndPoint(IPAddress.Loopback, port), serverId, TimeSpan.FromSeconds(30), CancellationToken.None);
                answers[i] = AnswerIdentifyAsync(connections[i], clients[i]);
                await using var ping = await connections[i].OpenStreamAsync(PingService.ProtocolId, CancellationToken.None);
                await new PingService().PingAsync(ping, CancellationToken.None);
            }
            finally
            {
                gate.Release();
            }
        }));
        // As any libp2p peer does, each client answers the node's identify; a session is idle once that is done.
        var identified = (await Task.WhenAll(answers).WaitAsync(TimeSpan.FromSeconds(60))).Count(a => a);
        Console.WriteLine($"{count} authenticated sessions in {stopwatch.Elapsed.TotalSeconds:0.0} s ({identified} identified by the node)");

        long peak = 0;
        long last = 0;
        long sum = 0;
        for (var s = 0; s < seconds; s++)
        {
            await Task.Delay(1000);
            last = Rss(host.Id);
            peak = Math.Max(peak, last);
            sum += last;
        }
        Console.WriteLine($"node RSS with {count} idle sessions: {last / 1024.0 / 1024:0.0} MB {RssSplit(host.Id)} (peak {peak / 1024.0 / 1024:0.0} MB, mean {sum / Math.Max(1, seconds) / 1024.0 / 1024:0.0} MB over {seconds} s)");
        Console.WriteLine("node: " + lastReport);
        if (realNode)
        {
            // The control API's web host starts at the owner's first connection: what the node holds once it has
            // answered one (`securemesh status`).
            var open = await IdleNode.NodeSideSessionsAsync(home);
            await Task.Delay(2000);
            Console.WriteLine($"after one control request (GET /v1/status: {open} connections): {Rss(host.Id) / 1024.0 / 1024:0.0} MB {RssSplit(host.Id)}");
        }
        foreach (var c in connections)
        {
            await c.DisposeAsync();
        }
        host.Kill();
        await host.WaitForExitAsync();
        foreach (var c in clients)
        {
            c.Dispose();
        }
        Directory.Delete(home, recursive: true);
    }

    /// <summary>Answers the node's identify request on <paramref name="link"/> (what every libp2p peer does after connecting).</summary>
    private static async Task<bool> AnswerIdentifyAsync(PeerLink link, NodeIdentity me)
    {
        try
        {
            var (_, stream) = await link.AcceptStreamAsync([IdentifyService.ProtocolId], CancellationToken.None);
            await using (stream)
            {
                await new IdentifyService().RespondAsync(stream, IdentifyService.Describe(me, [], [PingService.ProtocolId], null), CancellationToken.None);
            }
            return true;
        }
        catch (Exception e) when (e is Core.SecureMeshException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>The child: a node on 127.0.0.1:0 that prints its port and runs until killed.</summary>
    public static async Task HostAsync(string home, int maxSessions)
    {
        using var identity = IdentityStore.Load(home, () => null);
        using var db = SecureMeshDatabase.Open(home);
        await using var node = MeshNode.Start(identity, db, new NodeOptions
        {
            Home = home,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            MaxSessions = maxSessions + 16,
        });
        Console.WriteLine(node.LocalEndPoint.Port.ToString(CultureInfo.InvariantCulture));
        // Where the memory is, for the parent to print: the managed heap against the whole resident set.
        while (true)
        {
            await Task.Delay(1000);
            var gc = GC.GetGCMemoryInfo();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"managed heap {GC.GetTotalMemory(false) / 1048576.0:0.0} MB in use (gen0-2 {Enumerable.Range(0, 3).Sum(g => gc.GenerationInfo[g].SizeAfterBytes) / 1048576.0:0.0} MB, " +
                $"large objects {gc.GenerationInfo[3].SizeAfterBytes / 1048576.0:0.0} MB, pinned {gc.GenerationInfo[4].SizeAfterBytes / 1048576.0:0.0} MB), " +
                $"{gc.TotalCommittedBytes / 1048576.0:0.0} MB committed; {ThreadPool.ThreadCount} pool threads"));
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal static long Rss(int pid) => StatusBytes(pid, "VmRSS:");

    /// <summary>
    /// Where the resident set is (/proc/PID/status): anonymous pages (GC heap, malloc, stacks), file-backed pages (the
    /// runtime, framework and native libraries mapped from disk) and shared memory (the JIT's double-mapped code,
    /// <c>memfd:doublemapper</c>).
    /// </summary>
    internal static string RssSplit(int pid) => string.Create(CultureInfo.InvariantCulture,
        $"[anon {StatusBytes(pid, "RssAnon:") / 1048576.0:0.0}, file {StatusBytes(pid, "RssFile:") / 1048576.0:0.0}, shmem {StatusBytes(pid, "RssShmem:") / 1048576.0:0.0}]");

    private static long StatusBytes(int pid, string field)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        return 0;
    }
}
