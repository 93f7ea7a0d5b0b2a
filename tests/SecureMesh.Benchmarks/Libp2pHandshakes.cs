using System.Diagnostics;
using System.Globalization;
using System.Net;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.Ping;
using SecureMesh.Node;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Benchmarks;

/// <summary>
/// <c>libp2p-handshakes [SECONDS] [PARALLEL]</c>: connections per second into a real <see cref="MeshNode"/> over the whole
/// libp2p upgrade (TCP connect, multistream-select /noise, Noise XX with both signatures checked, yamux chosen in the
/// handshake, the node's authorization against the trust store, yamux started on both sides); "with a ping" also opens
/// a stream, negotiates /ipfs/ping/1.0.0 and waits for one echo, so the node's side is proven up. Both ends run in this
/// process, on the same two cores; the CPU time per connection (both ends together) is printed too, since on a shared
/// machine it is steadier than the rate. The first WARMUP seconds (20 by default) are not counted: with tiered
/// compilation (this program's default) a 3 s warm-up left most of the handshake path in Tier0 and the JIT busy
/// recompiling it (1.84-1.88 ms of CPU per connection against 1.07-1.27 ms after 20 s, and 1.25-1.32 ms with
/// <c>DOTNET_TieredCompilation=0</c>, as the securemesh executable ships, after 3 s).
/// </summary>
internal static class Libp2pHandshakes
{
    public static async Task RunAsync(int seconds, int parallel, int warmUpSeconds)
    {
        var home = Directory.CreateTempSubdirectory("securemesh-hs-").FullName;
        const int Clients = 64;
        var clients = Enumerable.Range(0, Clients).Select(_ => NodeIdentity.Generate()).ToList();
        using var server = NodeIdentity.Generate();
        using var db = SecureMeshDatabase.Open(home);
        foreach (var c in clients)
        {
            db.Trust.AddPeer(c.PeerId, trusted: true);
        }
        await using var node = MeshNode.Start(server, db, new NodeOptions
        {
            Home = home,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            MaxSessions = 100_000,
            MaxPendingPerAddress = 1024,
            MaxPendingHandshakes = 1024,
            // Every client dials from 127.0.0.1: the per-address handshake budget (issue 14) would refuse most of them.
            HandshakeBurst = int.MaxValue / 2,
            HandshakeRefill = TimeSpan.FromTicks(1),
        });
        // First-chance exceptions (thrown and caught anywhere in the process, both ends): each costs tens of microseconds.
        // SECUREMESH_BENCH_EXCEPTION_SITES=1 also prints where they are thrown (type and the first frames), most frequent first.
        var exceptions = 0L;
        var sites = Environment.GetEnvironmentVariable("SECUREMESH_BENCH_EXCEPTION_SITES") == "1" ? new System.Collections.Concurrent.ConcurrentDictionary<string, int>() : null;
        AppDomain.CurrentDomain.FirstChanceException += (_, e) =>
        {
            Interlocked.Increment(ref exceptions);
            if (sites is not null)
            {
                var site = e.Exception.GetType().Name + ": " + string.Join(" <- ", new StackTrace(2, false).GetFrames().Take(12)
                    .Select(f => f.GetMethod()).Where(m => m is not null && m.DeclaringType?.Namespace?.StartsWith("SecureMesh", StringComparison.Ordinal) == true)
                    .Take(4).Select(m => m!.DeclaringType!.Name + "." + m.Name));
                sites.AddOrUpdate(site, 1, (_, n) => n + 1);
            }
        };
        // The first round warms up (JIT, tiering, pools) and is not printed.
        foreach (var (withPing, warmUp) in new[] { (true, true), (false, false), (true, false) })
        {
            var done = 0L;
            var failed = 0L;
            using var process = Process.GetCurrentProcess();
            var cpuBefore = process.TotalProcessorTime;
            var allocatedBefore = GC.GetTotalAllocatedBytes();
            var gcsBefore = GC.CollectionCount(0);
            var exceptionsBefore = Interlocked.Read(ref exceptions);
            sites?.Clear();
            var stop = Stopwatch.StartNew();
            var until = TimeSpan.FromSeconds(warmUp ? warmUpSeconds : seconds);
            await Task.WhenAll(Enumerable.Range(0, parallel).Select(worker => Task.Run(async () =>
            {
                var n = worker;
                while (stop.Elapsed < until)
                {
                    // Each worker has its own client identities, so one client never races itself for its one session.
                    var client = clients[(n % (Clients / parallel) * parallel) + worker];
                    n++;
                    try
                    {
                        await using var link = await PeerLink.DialAsync(client, node.LocalEndPoint, server.PeerId, TimeSpan.FromSeconds(10), CancellationToken.None);
                        if (withPing)
                        {
                            var ping = await link.OpenStreamAsync(PingService.ProtocolId, CancellationToken.None);
                            await new PingService().PingAsync(ping, CancellationToken.None);
                            // Ended as the node's own PingAsync ends it (FIN, the node's FIN back), not reset by a bare dispose.
                            await StreamClosing.CloseAsync(ping, TimeSpan.FromSeconds(5), TimeProvider.System);
                        }
                        Interlocked.Increment(ref done);
                    }
                    catch (Exception e) when (e is Core.SecureMeshException or IOException or OperationCanceledException)
                    {
                        if (Interlocked.Increment(ref failed) == 1)
                        {
                            Console.WriteLine("first failure: " + e.Message);
                        }
                    }
                }
            })));
            var elapsed = stop.Elapsed.TotalSeconds;
            if (warmUp)
            {
                continue;
            }
            process.Refresh();
            var cpu = (process.TotalProcessorTime - cpuBefore).TotalMilliseconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"libp2p connections{(withPing ? " with a ping" : string.Empty)}: {done / elapsed:0} per second ({done} in {elapsed:0.0} s, {parallel} in parallel, {failed} failed); " +
                $"CPU {cpu / Math.Max(1, done):0.00} ms per connection (both ends; {cpu / 1000 / elapsed:0.00} of {Environment.ProcessorCount} cores busy in this process); " +
                $"{(GC.GetTotalAllocatedBytes() - allocatedBefore) / 1024.0 / Math.Max(1, done):0.0} KB allocated per connection, {GC.CollectionCount(0) - gcsBefore} GCs, " +
                $"{(double)(Interlocked.Read(ref exceptions) - exceptionsBefore) / Math.Max(1, done):0.0} first-chance exceptions per connection"));
            foreach (var (site, count) in sites?.OrderByDescending(p => p.Value).Take(25) ?? [])
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {(double)count / Math.Max(1, done),5:0.00} per connection  {site}"));
            }
        }
        clients.ForEach(c => c.Dispose());
    }
}
