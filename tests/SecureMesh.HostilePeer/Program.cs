using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.HostilePeer;

// Usage: SecureMesh.HostilePeer [--home DIR --listen IP:PORT --chunk-size BYTES --file PATH...]
//                               [--target IP:PORT... [--flood-from IP]... [--half-open N] [--flood-delay-ms N]]
// A hostile peer for the multi-host test, in one or both of two roles:
// - the liar (--listen): loads the identity in DIR (made by 'securemesh init'), claims every --file (a manifest it
//   signs, have-all) and answers every chunk request with a lie; prints "liar PEERID listening on ...";
// - the flooder (--target): floods every target with handshakes from the --flood-from addresses; prints "flooding ...".
// The test runs the two roles as two processes in the hostile host's namespace, the flooder under 'nice', so that
// the flooder's own CPU use (on a real network, another machine's) does not slow the liar's answers.
// Prints a "stats ..." line every second and on exit; stops on SIGTERM or SIGINT.
string? home = null;
IPEndPoint? listen = null;
var chunkSize = ChunkLayout.DefaultChunkSize;
var files = new List<string>();
var targets = new List<IPEndPoint>();
var sources = new List<IPAddress>();
var floodDelay = TimeSpan.FromMilliseconds(20);
var halfOpen = 48;
for (var i = 0; i < args.Length; i += 2)
{
    if (i + 1 >= args.Length)
    {
        return Usage($"{args[i]} needs a value");
    }
    var value = args[i + 1];
    switch (args[i])
    {
        case "--home":
            home = value;
            break;
        case "--listen":
            listen = IPEndPoint.Parse(value);
            break;
        case "--chunk-size":
            chunkSize = int.Parse(value, CultureInfo.InvariantCulture);
            break;
        case "--file":
            files.Add(value);
            break;
        case "--target":
            targets.Add(IPEndPoint.Parse(value));
            break;
        case "--flood-from":
            sources.Add(IPAddress.Parse(value));
            break;
        case "--half-open":
            halfOpen = int.Parse(value, CultureInfo.InvariantCulture);
            break;
        case "--flood-delay-ms":
            floodDelay = TimeSpan.FromMilliseconds(int.Parse(value, CultureInfo.InvariantCulture));
            break;
        default:
            return Usage($"unknown option {args[i]}");
    }
}
if (listen is null && targets.Count == 0)
{
    return Usage("give --listen (the liar), --target (the flooder), or both");
}
if (listen is not null && home is null)
{
    return Usage("--listen needs --home");
}

using var stop = new CancellationTokenSource();
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
var stats = new HostileStats();
var running = new List<Task>();
NodeIdentity? identity = null;
try
{
    if (listen is not null)
    {
        identity = IdentityStore.Load(home!, () => null);
        var claims = new List<Claim>();
        foreach (var file in files)
        {
            var tree = await FileIndexer.IndexAsync(file, chunkSize);
            var name = Path.GetFileName(file);
            claims.Add(new Claim(file, name, tree, Manifest.Create(identity, tree, name, DateTimeOffset.UtcNow)));
            Console.WriteLine($"claims {tree.ContentId} {name}");
        }
        running.Add(new LyingServer(identity, claims, stats).Start(listen, stop.Token));
        Console.WriteLine($"liar {identity.PeerId} listening on {listen}");
    }
    if (targets.Count > 0)
    {
        running.Add(new HandshakeFlood(targets, sources, floodDelay, halfOpen, stats).RunAsync(stop.Token));
        Console.WriteLine($"flooding {targets.Count} targets from {Math.Max(1, sources.Count)} addresses");
    }
    Console.Out.Flush();
    while (!stop.IsCancellationRequested)
    {
        await Task.Delay(TimeSpan.FromSeconds(1), stop.Token);
        Console.WriteLine(stats.Line());
        Console.Out.Flush();
    }
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
}
catch (SecureMeshException e)
{
    return Fail(e.Message);
}
finally
{
    identity?.Dispose();
}
await Task.WhenAll(running);
Console.WriteLine(stats.Line());
Console.WriteLine("stopped");
return 0;

void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    stop.Cancel();
}

static int Fail(string problem)
{
    Console.Error.WriteLine($"error: {problem}");
    return 1;
}

static int Usage(string problem)
{
    Console.Error.WriteLine($"error: {problem}");
    Console.Error.WriteLine("usage: SecureMesh.HostilePeer [--home DIR --listen IP:PORT --chunk-size BYTES --file PATH...] [--target IP:PORT... [--flood-from IP]... [--half-open N] [--flood-delay-ms N]]");
    return 2;
}
