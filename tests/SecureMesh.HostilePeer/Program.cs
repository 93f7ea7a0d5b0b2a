using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.HostilePeer;

// Usage: SecureMesh.HostilePeer --home DIR --listen IP:PORT --chunk-size BYTES [--file PATH]...
//            [--target IP:PORT]... [--flood-from IP]... [--flood-delay-ms N]
// A peer for the multi-host test: it loads the identity in DIR (made by 'securemesh init'), claims every --file
// (signed manifest, have-all) but answers every chunk request with a lie, and floods every --target with
// handshakes from the --flood-from addresses. It prints "listening on ..." once ready and a "stats ..." line every
// second and on exit; it stops on SIGTERM or SIGINT.
string? home = null;
IPEndPoint? listen = null;
var chunkSize = ChunkLayout.DefaultChunkSize;
var files = new List<string>();
var targets = new List<IPEndPoint>();
var sources = new List<IPAddress>();
var floodDelay = TimeSpan.FromMilliseconds(20);
for (var i = 0; i < args.Length; i++)
{
    var value = i + 1 < args.Length ? args[i + 1] : null;
    if (value is null)
    {
        return Usage($"{args[i]} needs a value");
    }
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
        case "--flood-delay-ms":
            floodDelay = TimeSpan.FromMilliseconds(int.Parse(value, CultureInfo.InvariantCulture));
            break;
        default:
            return Usage($"unknown option {args[i]}");
    }
    i++;
}
if (home is null || listen is null)
{
    return Usage("--home and --listen are required");
}

using var identity = IdentityStore.Load(home, () => null);
var claims = new List<Claim>();
foreach (var file in files)
{
    var tree = await FileIndexer.IndexAsync(file, chunkSize);
    var name = Path.GetFileName(file);
    claims.Add(new Claim(file, name, tree, Manifest.Create(identity, tree, name, DateTimeOffset.UtcNow)));
}

using var stop = new CancellationTokenSource();
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
var stats = new HostileStats();
var server = new LyingServer(identity, claims, stats);
Task serving;
try
{
    serving = server.Start(listen, stop.Token);
}
catch (SecureMeshException e)
{
    await Console.Error.WriteLineAsync($"error: {e.Message}");
    return 1;
}
foreach (var claim in claims)
{
    Console.WriteLine($"claims {claim.Tree.ContentId} {claim.Name}");
}
Console.WriteLine($"hostile {identity.PeerId} listening on {listen}");
Console.Out.Flush();

var flood = new HandshakeFlood(targets, sources, floodDelay, stats).RunAsync(stop.Token);
try
{
    while (!stop.IsCancellationRequested)
    {
        await Task.Delay(TimeSpan.FromSeconds(1), stop.Token);
        Console.WriteLine(stats.Line());
        Console.Out.Flush();
    }
}
catch (OperationCanceledException)
{
}
await Task.WhenAll(serving, flood);
Console.WriteLine(stats.Line());
Console.WriteLine("stopped");
return 0;

void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    stop.Cancel();
}

static int Usage(string problem)
{
    Console.Error.WriteLine($"error: {problem}");
    Console.Error.WriteLine("usage: SecureMesh.HostilePeer --home DIR --listen IP:PORT --chunk-size BYTES [--file PATH]... [--target IP:PORT]... [--flood-from IP]... [--flood-delay-ms N]");
    return 2;
}
