using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Commands;

/// <summary>What <c>demo --json</c> prints at the end.</summary>
internal sealed record DemoSummary(
    string ContentId,
    string Name,
    long Size,
    double Seconds,
    double DownloadSeconds,
    double BytesPerSecond,
    IReadOnlyList<DemoSeeder> Seeders,
    string Downloader,
    int PeersUsed,
    long ChunkRequests,
    bool Verified,
    bool Released,
    bool Identical,
    string Folder,
    bool Kept);

/// <summary>A seeder in the <see cref="DemoSummary"/>.</summary>
internal sealed record DemoSeeder(string Name, string PeerId, string Fingerprint, long ChunksServed);

/// <summary>Runs the demo: three in-process nodes (A, B seed; C downloads) in a temporary folder, cleaned up at the end.</summary>
internal static class DemoRunner
{
    private const string SampleName = "securemesh-demo-sample.bin";
    private const int SampleSeed = 20_251_125;
    private const int DemoChunkSize = 256 * 1024;

    public static async Task<DemoSummary> RunAsync(CliContext ctx, long size, bool keep, CancellationToken cancellationToken)
    {
        // With --json the steps go to stderr so stdout carries only the summary.
        var log = ctx.Json ? ctx.Err : ctx.Out;
        var clock = Stopwatch.StartNew();
        void Step(string text)
        {
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{clock.Elapsed.TotalSeconds,5:0.0}s] {text}"));
            log.Flush();
        }

        var folder = Directory.CreateTempSubdirectory("securemesh-demo-").FullName;
        var loggerFactory = NodeRuntime.QuietLoggerFactory(ctx.Verbose);
        var peers = new List<DemoPeer>();
        var kept = false;
        try
        {
            Step($"demo folder: {folder} (three data directories; your own data directory is not used)");
            foreach (var name in new[] { "A", "B", "C" })
            {
                cancellationToken.ThrowIfCancellationRequested();
                var peer = DemoPeer.Create(name, Path.Combine(folder, name), loggerFactory);
                peers.Add(peer);
                Step($"peer {name} created: Peer ID {peer.PeerId}  fingerprint {peer.PeerId.Fingerprint}  listening on {peer.Address}");
            }
            var (a, b, c) = (peers[0], peers[1], peers[2]);

            foreach (var peer in peers)
            {
                foreach (var other in peers.Where(p => p != peer))
                {
                    peer.Db.Trust.AddPeer(other.PeerId, $"demo-{other.Name}", [other.Address], trusted: true);
                }
            }
            Step("trust established: each peer added the other two with their address, trusted");

            var pairs = new[] { (c, a), (c, b), (a, b) };
            foreach (var (dialer, listener) in pairs)
            {
                await dialer.Node.ConnectAsync(listener.PeerId, listener.Node.LocalEndPoint, cancellationToken);
            }
            foreach (var peer in peers)
            {
                var ready = await peer.Transfer.WaitForPeersAsync(2, TimeSpan.FromSeconds(10), cancellationToken);
                if (ready < 2)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Network, $"peer {peer.Name} has {ready} protocol session(s) after 10 s, expected 2");
                }
            }
            foreach (var (dialer, listener) in pairs)
            {
                var mine = dialer.Node.GetSession(listener.PeerId)?.ShortAuthString;
                var theirs = listener.Node.GetSession(dialer.PeerId)?.ShortAuthString;
                if (mine is null || theirs is null || !string.Equals(mine, theirs, StringComparison.Ordinal))
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Protocol,
                        $"session {dialer.Name} <-> {listener.Name}: the short authentication strings differ ({mine ?? "none"} / {theirs ?? "none"})");
                }
                Step($"session {dialer.Name} <-> {listener.Name}: Noise handshake done, short authentication string \"{mine}\" (same on both sides)");
            }
            Step("protocol sessions ready: every peer is connected to the other two");

            var original = Path.Combine(folder, SampleName);
            await WriteSampleAsync(original, size, cancellationToken);
            Step($"sample file generated: {SampleName}, {Num(size)} bytes of deterministic pseudo-random data");

            ContentId? id = null;
            foreach (var seeder in new[] { a, b })
            {
                var dir = Path.Combine(seeder.Home, "shared");
                Directory.CreateDirectory(dir);
                var path = Path.Combine(dir, SampleName);
                File.Copy(original, path);
                var started = Stopwatch.GetTimestamp();
                var result = await seeder.Transfer.Shares.AddAsync(path, null, cancellationToken);
                var entry = seeder.Db.Catalog.Get(Path.GetFullPath(path));
                if (entry is null || result.Failed.Count > 0)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Storage,
                        $"peer {seeder.Name} could not index the sample{(result.Failed.Count > 0 ? ": " + result.Failed[0] : string.Empty)}");
                }
                var seederId = ContentId.Parse(entry.ContentId);
                if (id is not null && !string.Equals(id.Text, seederId.Text, StringComparison.Ordinal))
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Storage, $"peers A and B indexed the same bytes as different content IDs ({id} / {seederId})");
                }
                id = seederId;
                Step(string.Create(CultureInfo.InvariantCulture,
                    $"peer {seeder.Name} shared {SampleName}: indexed in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.00} s, content ID {seederId}"));
            }
            var contentId = id!;

            var hits = await c.Transfer.SearchAsync("securemesh demo sample", cancellationToken);
            var hit = hits.FirstOrDefault(h => string.Equals(h.ContentId, contentId.Text, StringComparison.Ordinal))
                ?? throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"peer C's search did not find {contentId}");
            var holders = hit.Peers.Select(p => peers.FirstOrDefault(x => string.Equals(x.PeerId.Text, p, StringComparison.Ordinal))?.Name ?? p).ToList();
            Step($"peer C searched \"securemesh demo sample\": {hits.Count} result(s); {hit.Name}, {Num(hit.Size)} bytes, {hit.ContentId}");
            foreach (var p in hit.Peers)
            {
                var who = peers.First(x => string.Equals(x.PeerId.Text, p, StringComparison.Ordinal));
                Step($"  seeder {who.Name}: {p} (fingerprint {who.PeerId.Fingerprint})");
            }
            if (!holders.Contains("A") || !holders.Contains("B"))
            {
                throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"peer C's search lists {string.Join(", ", holders)}, expected both seeders A and B");
            }

            var received = Path.Combine(c.Home, "received");
            var chunks = (size + DemoChunkSize - 1) / DemoChunkSize;
            Step($"peer C starts a swarm download from A and B ({Num(chunks)} chunk(s) of {DemoChunkSize >> 10} KiB) into quarantine, release to {received}");
            var downloadStarted = Stopwatch.GetTimestamp();
            var handle = c.Transfer.StartDownload(contentId, received);
            DownloadResult outcome;
            var maxPeers = 0;
            using (cancellationToken.Register(handle.Cancel))
            {
                var line = ctx.Json ? null : new ProgressLine(ctx.Err);
                while (!handle.Completion.IsCompleted)
                {
                    await Task.WhenAny(handle.Completion, Task.Delay(200, CancellationToken.None));
                    maxPeers = Math.Max(maxPeers, handle.Progress.Peers);
                    line?.Update(Describe(handle.Progress), force: true);
                }
                line?.Done();
                outcome = await handle.Completion;
            }
            cancellationToken.ThrowIfCancellationRequested();
            var downloadSeconds = Stopwatch.GetElapsedTime(downloadStarted).TotalSeconds;
            var progress = handle.Progress;
            var servedA = a.Transfer.ChunksServed;
            var servedB = b.Transfer.ChunksServed;
            Step(string.Create(CultureInfo.InvariantCulture,
                $"transfer done: {Num(progress.BytesDone)} bytes in {downloadSeconds:0.00} s ({progress.BytesPerSecond / 1048576:0.0} MiB/s), up to {maxPeers} peer(s) in use"));
            // What the seeders count is the requests they answered; near the end a chunk is asked of both seeders at
            // once (and a slow answer is asked again elsewhere), so the answers may add up to more than the chunks.
            Step(string.Create(CultureInfo.InvariantCulture,
                $"chunks fetched: {Num(chunks)}; chunk requests answered: A {servedA} + B {servedB} = {servedA + servedB} (C sent {progress.ChunkRequests}; a chunk asked of both seeders near the end counts once per answer)"));

            if (outcome.State != DownloadState.Released || outcome.Path is null)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Network,
                    $"the download ended {outcome.State.ToString().ToLowerInvariant()}: {outcome.Reason ?? "no reason given"}");
            }
            var item = outcome.QuarantineId is long qid ? c.Db.Quarantine.Get(qid) : null;
            if (item is null || !item.Verified)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Storage, "the quarantine does not record the download as verified");
            }
            Step($"verified: every chunk checked on arrival, then the whole tree rebuilt to {contentId}");
            Step($"released from quarantine (item #{item.Id}, state {item.StateName}) to {outcome.Path}");

            var identical = await SameBytesAsync(original, outcome.Path, cancellationToken);
            if (!identical)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Storage, $"the released file {outcome.Path} differs from the original");
            }
            Step($"byte-for-byte comparison with the original: identical ({Num(size)} bytes)");

            var seconds = clock.Elapsed.TotalSeconds;
            Step(string.Create(CultureInfo.InvariantCulture, $"demo finished in {seconds:0.0} s"));
            kept = keep;
            return new DemoSummary(
                contentId.Text,
                SampleName,
                size,
                Math.Round(seconds, 2),
                Math.Round(downloadSeconds, 2),
                Math.Round(progress.BytesPerSecond),
                [
                    new DemoSeeder("A", a.PeerId.Text, a.PeerId.Fingerprint, servedA),
                    new DemoSeeder("B", b.PeerId.Text, b.PeerId.Fingerprint, servedB),
                ],
                c.PeerId.Text,
                maxPeers,
                progress.ChunkRequests,
                Verified: true,
                Released: true,
                Identical: true,
                folder,
                keep);
        }
        finally
        {
            for (var i = peers.Count - 1; i >= 0; i--)
            {
                try
                {
                    await peers[i].DisposeAsync();
                }
#pragma warning disable CA1031 // Cleanup goes on whatever one node's shutdown throws; the folder must still go.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    ctx.Err.WriteLine($"warning: stopping demo peer {peers[i].Name} failed: {e.Message}");
                }
            }
            loggerFactory.Dispose();
            if (kept)
            {
                Step($"kept the demo folder: {folder}");
            }
            else
            {
                try
                {
                    Directory.Delete(folder, recursive: true);
                    Step($"cleaned up: nodes stopped, demo folder {folder} deleted");
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    ctx.Err.WriteLine($"warning: could not delete the demo folder {folder}: {e.Message}");
                }
            }
        }
    }

    private static string Describe(DownloadProgress p)
    {
        var percent = p.TotalBytes > 0 ? 100.0 * p.BytesDone / p.TotalBytes : 0;
        return string.Create(CultureInfo.InvariantCulture,
            $"{p.State.ToString().ToLowerInvariant()}  {percent:0.0}%  {ShareCommands.Mib(p.BytesDone)} / {ShareCommands.Mib(p.TotalBytes)} MiB  {p.BytesPerSecond / 1048576:0.0} MiB/s  {p.Peers} peer(s) in use");
    }

    private static string Num(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>Writes <paramref name="size"/> deterministic pseudo-random bytes (same seed, same file).</summary>
    private static async Task WriteSampleAsync(string path, long size, CancellationToken cancellationToken)
    {
        var random = new Random(SampleSeed);
        var buffer = new byte[1 << 20];
        await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        for (long left = size; left > 0;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = (int)Math.Min(buffer.Length, left);
            random.NextBytes(buffer.AsSpan(0, n));
            await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
            left -= n;
        }
    }

    private static async Task<bool> SameBytesAsync(string first, string second, CancellationToken cancellationToken)
    {
        await using var x = new FileStream(first, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using var y = new FileStream(second, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        if (x.Length != y.Length)
        {
            return false;
        }
        var bx = new byte[1 << 20];
        var by = new byte[1 << 20];
        while (true)
        {
            var n = await x.ReadAtLeastAsync(bx, bx.Length, throwOnEndOfStream: false, cancellationToken);
            var m = await y.ReadAtLeastAsync(by, by.Length, throwOnEndOfStream: false, cancellationToken);
            if (n != m || !bx.AsSpan(0, n).SequenceEqual(by.AsSpan(0, m)))
            {
                return false;
            }
            if (n == 0)
            {
                return true;
            }
        }
    }

    /// <summary>One demo node: its own data directory, unencrypted identity, SQLite database, transfer engine and listener.</summary>
    private sealed class DemoPeer : IAsyncDisposable
    {
        private readonly MeshHost _host;

        private DemoPeer(string name, string home, NodeIdentity identity, SecureMeshDatabase db, MeshHost host)
        {
            Name = name;
            Home = home;
            Identity = identity;
            Db = db;
            _host = host;
        }

        public string Name { get; }

        public string Home { get; }

        public NodeIdentity Identity { get; }

        public PeerId PeerId => Identity.PeerId;

        public SecureMeshDatabase Db { get; }

        public TransferService Transfer => _host.Transfer;

        public MeshNode Node => _host.Node;

        public string Address => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Node.LocalEndPoint.Port}");

        public static DemoPeer Create(string name, string home, ILoggerFactory loggerFactory)
        {
            var identity = NodeIdentity.Generate();
            SecureMeshDatabase? db = null;
            try
            {
                IdentityStore.Save(home, identity, passphrase: null, force: false);
                db = SecureMeshDatabase.Open(home);
                db.Config.Set(NodeSettings.ChunkSize, DemoChunkSize.ToString(CultureInfo.InvariantCulture));
                db.Config.Set(NodeSettings.DownloadDir, Path.Combine(home, "received"));
                db.Config.Set(NodeSettings.Discovery, "off");
                // Just the connections and the transfer engine: nothing to wait for, so this completes at once.
                var host = MeshHost.StartAsync(identity, db, new MeshHostOptions { Home = home, Listen = new IPEndPoint(IPAddress.Loopback, 0), LoggerFactory = loggerFactory },
                    CancellationToken.None).GetAwaiter().GetResult();
                return new DemoPeer(name, home, identity, db, host);
            }
            catch
            {
                db?.Dispose();
                identity.Dispose();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                // The host's own stop order: connector, connections, transfer engine.
                await _host.DisposeAsync();
            }
            finally
            {
                Db.Dispose();
                Identity.Dispose();
            }
        }
    }
}
