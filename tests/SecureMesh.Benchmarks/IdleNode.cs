using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Benchmarks;

/// <summary>
/// <c>idle-node [PEERS] [SECONDS]</c>: one real <c>securemesh run</c> process (control API and discovery on) with PEERS
/// trusted peers connected to it, left idle; samples its RSS and CPU time from /proc once a second.
/// </summary>
internal static class IdleNode
{
    public static async Task RunAsync(int peers, int seconds)
    {
        var root = Directory.CreateTempSubdirectory("securemesh-idle-").FullName;
        var home = Path.Combine(root, "node");
        IdentityStore.EnsureDataDirectory(home);
        var identities = Enumerable.Range(0, peers).Select(_ => NodeIdentity.Generate()).ToList();
        PeerId nodeId;
        using (var identity = NodeIdentity.Generate())
        {
            IdentityStore.Save(home, identity, passphrase: null, force: false);
            nodeId = identity.PeerId;
        }
        using (var db = SecureMeshDatabase.Open(home))
        {
            foreach (var p in identities)
            {
                db.Trust.AddPeer(p.PeerId, trusted: true);
            }
        }
        var port = FreePort();
        var dll = Path.Combine(AppContext.BaseDirectory, "securemesh.dll");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { dll, "--home", home, "run", "--listen", $"127.0.0.1:{port}" })
        {
            start.ArgumentList.Add(a);
        }
        using var process = Process.Start(start)!;
        var started = new TaskCompletionSource();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.Contains("control socket", StringComparison.Ordinal) == true)
            {
                started.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var connections = new List<PeerLink>();
        try
        {
            await started.Task.WaitAsync(TimeSpan.FromSeconds(60));
            var endPoint = new IPEndPoint(IPAddress.Loopback, port);
            foreach (var p in identities)
            {
                var connection = await PeerLink.DialAsync(p, endPoint, nodeId, TimeSpan.FromSeconds(10), CancellationToken.None);
                // Speak the transfer protocol's opening, as a real peer does, so the node keeps the session.
                await connection.SendAsync(SecureMesh.Core.Wire.WireCodec.Encode(new SecureMesh.Core.Wire.Hello(0, SecureMesh.Core.Wire.WireLimits.ProtocolVersion, [], SecureMesh.Core.Wire.WireLimits.DefaultMaxMessageSize)), CancellationToken.None);
                connections.Add(connection);
            }
            Console.WriteLine($"node pid {process.Id}: {connections.Count} trusted peers connected; settling 5 s, then sampling {seconds} s");
            await Task.Delay(TimeSpan.FromSeconds(5));

            var ticksPerSecond = 100.0; // USER_HZ on Linux
            var rss = new List<long>();
            var cpu0 = CpuTicks(process.Id);
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < seconds; i++)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
                rss.Add(RssKb(process.Id));
            }
            var cpu1 = CpuTicks(process.Id);
            var elapsed = clock.Elapsed.TotalSeconds;
            var cpuSeconds = (cpu1 - cpu0) / ticksPerSecond;
            var open = await NodeSideSessionsAsync(home);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"idle node, {open}/{peers} sessions open, {elapsed:0.0} s: RSS min {rss.Min() / 1024.0:0.0} MB, mean {rss.Average() / 1024.0:0.0} MB, max {rss.Max() / 1024.0:0.0} MB; " +
                $"CPU {cpuSeconds:0.00} s = {100 * cpuSeconds / elapsed:0.00}% of one core"));
        }
        finally
        {
            foreach (var c in connections)
            {
                await c.DisposeAsync();
            }
            if (!process.HasExited)
            {
                process.Kill();
                await process.WaitForExitAsync();
            }
            identities.ForEach(i => i.Dispose());
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>The sessions the node itself reports on its control API.</summary>
    internal static async Task<int> NodeSideSessionsAsync(string home)
    {
        var socketPath = Path.Combine(home, "control.sock");
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        })
        {
            Timeout = TimeSpan.FromSeconds(10),
        };
        using var doc = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(new Uri("http://node/v1/status")));
        return doc.RootElement.GetProperty("connections").GetArrayLength();
    }

    private static long RssKb(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }

    /// <summary>utime + stime of the process, in clock ticks (fields 14 and 15 of /proc/PID/stat, after the command name).</summary>
    private static long CpuTicks(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
