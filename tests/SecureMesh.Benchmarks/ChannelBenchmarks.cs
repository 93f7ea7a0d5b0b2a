using System.Buffers;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Node.Network;

namespace SecureMesh.Benchmarks;

/// <summary>
/// Connection upgrades over loopback TCP through the node's transport (connect, multistream-select /noise, Noise XX with
/// both signatures checked, yamux chosen in the handshake); no yamux session and no authorization (for the whole node's
/// figure see <see cref="Libp2pHandshakes"/>).
/// </summary>
[MemoryDiagnoser]
public class HandshakeBenchmarks
{
    public const int Handshakes = 256;

    private NodeIdentity _server = null!;
    private NodeIdentity _client = null!;
    private TcpTransport _listener = null!;
    private Task _drain = null!;
    private CancellationTokenSource _stop = null!;

    /// <summary>Handshakes in flight at once (the machine has two cores).</summary>
    [Params(4)]
    public int Concurrency { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _server = NodeIdentity.Generate();
        _client = NodeIdentity.Generate();
        _listener = Listen(_server);
        _stop = new CancellationTokenSource();
        _drain = DrainAsync(_listener, _stop.Token);
    }

    /// <summary>A transport that takes up to 256 upgrades at once from one address (every client here dials from 127.0.0.1).</summary>
    internal static TcpTransport Listen(NodeIdentity server) =>
        TcpTransport.Listen(new IPEndPoint(IPAddress.Loopback, 0), new Upgrader(server), new TcpTransportOptions { MaxPendingPerAddress = 256, Backlog = 1024 });

    /// <summary>Closes every connection the transport hands out, until stopped.</summary>
    internal static Task DrainAsync(TcpTransport transport, CancellationToken stop) => Task.Run(async () =>
    {
        try
        {
            await foreach (var c in transport.Connections.ReadAllAsync(stop))
            {
                await c.Connection.DisposeAsync();
            }
        }
        catch (OperationCanceledException)
        {
        }
    });

    [Benchmark(OperationsPerInvoke = Handshakes)]
    public Task Handshake() => RunAsync(_client, _listener.LocalEndPoint, _server.PeerId, Handshakes, Concurrency);

    public static async Task RunAsync(NodeIdentity client, IPEndPoint endPoint, PeerId expected, int count, int concurrency)
    {
        var next = 0;
        var upgrader = new Upgrader(client);
        var workers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) <= count)
            {
                await using var c = await TcpTransport.DialAsync(upgrader, endPoint, expected, UpgraderOptions.Default.HandshakeTimeout, TimeProvider.System, CancellationToken.None);
            }
        }));
        await Task.WhenAll(workers);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop.Cancel();
        _listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _drain.GetAwaiter().GetResult();
        _server.Dispose();
        _client.Dispose();
        _stop.Dispose();
    }
}

/// <summary>One-way transfer of 64 KiB writes over loopback: through the Noise stream (after the upgrade), and raw TCP in the same run.</summary>
public class ThroughputBenchmarks
{
    public const int MessageSize = 64 * 1024;
    public const int Messages = 1024; // 64 MiB per invocation

    private ThroughputRig _rig = null!;

    [GlobalSetup]
    public void Setup() => _rig = ThroughputRig.CreateAsync().GetAwaiter().GetResult();

    [Benchmark(OperationsPerInvoke = Messages, Baseline = true)]
    public Task RawTcp() => _rig.RawAsync(Messages);

    [Benchmark(OperationsPerInvoke = Messages)]
    public Task NoiseStream64KiB() => _rig.SecureAsync(Messages);

    [GlobalCleanup]
    public void Cleanup() => _rig.DisposeAsync().AsTask().GetAwaiter().GetResult();
}

internal sealed class ThroughputRig : IAsyncDisposable
{
    private readonly byte[] _message = new byte[ThroughputBenchmarks.MessageSize];
    private readonly byte[] _rawReceive = new byte[ThroughputBenchmarks.MessageSize];
    private NodeIdentity _a = null!;
    private NodeIdentity _b = null!;
    private readonly byte[] _secureReceive = new byte[ThroughputBenchmarks.MessageSize];
    private UpgradedConnection _sender = null!;
    private UpgradedConnection _receiver = null!;
    private NetworkStream _rawSender = null!;
    private NetworkStream _rawReceiver = null!;

    public static async Task<ThroughputRig> CreateAsync()
    {
        var rig = new ThroughputRig();
        Random.Shared.NextBytes(rig._message);
        rig._a = NodeIdentity.Generate();
        rig._b = NodeIdentity.Generate();
        var (s1, s2) = await PairAsync();
        var accept = new Upgrader(rig._b).UpgradeInboundAsync(s2, CancellationToken.None);
        rig._sender = await new Upgrader(rig._a).UpgradeOutboundAsync(s1, rig._b.PeerId, CancellationToken.None);
        rig._receiver = await accept;
        (rig._rawSender, rig._rawReceiver) = await PairAsync();
        return rig;
    }

    public async Task SecureAsync(int count)
    {
        var receive = Task.Run(async () =>
        {
            for (var i = 0; i < count; i++)
            {
                await _receiver.Stream.ReadExactlyAsync(_secureReceive, CancellationToken.None);
            }
        });
        for (var i = 0; i < count; i++)
        {
            await _sender.Stream.WriteAsync(_message, CancellationToken.None);
        }
        await receive;
    }

    public async Task RawAsync(int count)
    {
        var receive = Task.Run(async () =>
        {
            for (var i = 0; i < count; i++)
            {
                await _rawReceiver.ReadExactlyAsync(_rawReceive, CancellationToken.None);
            }
        });
        for (var i = 0; i < count; i++)
        {
            await _rawSender.WriteAsync(_message, CancellationToken.None);
        }
        await receive;
    }

    private static async Task<(NetworkStream, NetworkStream)> PairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var connect = client.ConnectAsync(listener.LocalEndPoint!);
        var server = await listener.AcceptAsync();
        server.NoDelay = true;
        await connect;
        return (new NetworkStream(client, true), new NetworkStream(server, true));
    }

    public async ValueTask DisposeAsync()
    {
        await _sender.DisposeAsync();
        await _receiver.DisposeAsync();
        await _rawSender.DisposeAsync();
        await _rawReceiver.DisposeAsync();
        _a.Dispose();
        _b.Dispose();
    }
}

/// <summary>A plain measured mode (<c>-- quick</c>): a few seconds each, figures printed directly.</summary>
internal static class QuickBenchmark
{
    public static async Task RunAsync(double seconds, bool handshakes = true, bool throughput = true)
    {
        if (handshakes)
        {
            await RunHandshakesAsync(seconds);
        }
        if (throughput)
        {
            await RunThroughputAsync(seconds);
        }
    }

    private static async Task RunHandshakesAsync(double seconds)
    {
        using var server = NodeIdentity.Generate();
        using var client = NodeIdentity.Generate();
        await using (var listener = HandshakeBenchmarks.Listen(server))
        {
            using var stop = new CancellationTokenSource();
            var drain = HandshakeBenchmarks.DrainAsync(listener, stop.Token);
            await HandshakeBenchmarks.RunAsync(client, listener.LocalEndPoint, server.PeerId, 200, 4); // warm-up
            foreach (var concurrency in new[] { 1, 4, 8 })
            {
                var count = 0;
                var sw = System.Diagnostics.Stopwatch.StartNew();
                while (sw.Elapsed.TotalSeconds < seconds)
                {
                    await HandshakeBenchmarks.RunAsync(client, listener.LocalEndPoint, server.PeerId, 200, concurrency);
                    count += 200;
                }
                Console.WriteLine($"upgrades/s (loopback, multistream + full XX + muxer choice, concurrency {concurrency}): {count / sw.Elapsed.TotalSeconds:N0}");
                var process = System.Diagnostics.Process.GetCurrentProcess();
                process.Refresh();
                var cpuBefore = process.TotalProcessorTime;
                await HandshakeBenchmarks.RunAsync(client, listener.LocalEndPoint, server.PeerId, 400, concurrency);
                process.Refresh();
                Console.WriteLine($"  CPU per handshake (both ends, user+kernel): {(process.TotalProcessorTime - cpuBefore).TotalMicroseconds / 400:N0} us");
            }
            await stop.CancelAsync();
            await drain;
        }
    }

    /// <summary>Only the Noise stream, for profiling with external tools.</summary>
    public static async Task RunSecureOnlyAsync(double seconds)
    {
        await using var rig = await ThroughputRig.CreateAsync();
        var secure = await MeasureAsync(rig.SecureAsync, seconds);
        Console.WriteLine($"64 KiB writes: Noise stream {secure:N0} MB/s");
    }

    private static async Task RunThroughputAsync(double seconds)
    {
        await using var rig = await ThroughputRig.CreateAsync();
        await rig.RawAsync(512);
        await rig.SecureAsync(512);
        for (var round = 0; round < 3; round++)
        {
            var (raw, rawCpu) = await MeasureWithCpuAsync(rig.RawAsync, seconds);
            var (secure, secureCpu) = await MeasureWithCpuAsync(rig.SecureAsync, seconds);
            Console.WriteLine($"64 KiB writes: raw TCP {raw:N0} MB/s, Noise stream {secure:N0} MB/s ({100 * secure / raw:N0}% of raw); " +
                $"CPU per GB (both ends, user+kernel): raw {rawCpu:N2} s, secure {secureCpu:N2} s");
        }
    }

    private static async Task<double> MeasureAsync(Func<int, Task> run, double seconds) => (await MeasureWithCpuAsync(run, seconds)).MegabytesPerSecond;

    /// <summary>Wall-clock throughput, and process CPU seconds per GB, which stays meaningful on a shared machine.</summary>
    private static async Task<(double MegabytesPerSecond, double CpuSecondsPerGigabyte)> MeasureWithCpuAsync(Func<int, Task> run, double seconds)
    {
        long bytes = 0;
        var process = System.Diagnostics.Process.GetCurrentProcess();
        process.Refresh();
        var cpuBefore = process.TotalProcessorTime;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            await run(1024);
            bytes += 1024L * ThroughputBenchmarks.MessageSize;
        }
        var elapsed = sw.Elapsed.TotalSeconds;
        process.Refresh();
        var cpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
        return (bytes / elapsed / 1e6, cpu / (bytes / 1e9));
    }
}

/// <summary>Where handshake time goes: the crypto alone, without sockets.</summary>
internal static class HandshakeCpuProbe
{
    private static readonly string[] Muxers = [Upgrader.YamuxProtocolId];

    public static void Run()
    {
        using var a = NodeIdentity.Generate();
        using var b = NodeIdentity.Generate();
        var la = Core.Channel.LocalStaticKey.For(a);
        var lb = Core.Channel.LocalStaticKey.For(b);
        var m = new byte[65535];
        var p = new byte[65535];
        void One()
        {
            using var i = new Core.Noise.HandshakeState(true, la.Key);
            using var r = new Core.Noise.HandshakeState(false, lb.Key);
            var n = i.WriteMessage(default, m);
            r.TryReadMessage(m.AsSpan(0, n), p, out _);
            n = r.WriteMessage(lb.PayloadWith(Muxers), m);
            i.TryReadMessage(m.AsSpan(0, n), p, out var len);
            Core.Channel.NoiseHandshake.VerifyPayload(p.AsSpan(0, len), i.RemoteStaticPublicKey);
            n = i.WriteMessage(la.PayloadWith(Muxers), m);
            r.TryReadMessage(m.AsSpan(0, n), p, out len);
            Core.Channel.NoiseHandshake.VerifyPayload(p.AsSpan(0, len), r.RemoteStaticPublicKey);
            i.Split().Dispose();
            r.Split().Dispose();
        }
        for (var k = 0; k < 500; k++)
        {
            One();
        }
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (var k = 0; k < 3000; k++)
        {
            One();
        }
        Console.WriteLine($"in-memory handshakes/s, one thread, both sides: {3000 / sw.Elapsed.TotalSeconds:N0}");
        sw.Restart();
        for (var k = 0; k < 3000; k++)
        {
            using var kp = Core.Noise.X25519KeyPair.Generate();
        }
        Console.WriteLine($"X25519 keygen/s: {3000 / sw.Elapsed.TotalSeconds:N0}");
        using var x = Core.Noise.X25519KeyPair.Generate();
        using var y = Core.Noise.X25519KeyPair.Generate();
        Span<byte> s = stackalloc byte[32];
        sw.Restart();
        for (var k = 0; k < 3000; k++)
        {
            x.TryAgree(y.PublicKey, s);
        }
        Console.WriteLine($"X25519 agree/s: {3000 / sw.Elapsed.TotalSeconds:N0}");
    }
}

internal static class AeadProbe
{
    public static void Run()
    {
        using var c = new Core.Noise.CipherState();
        c.InitializeKey(new byte[32]);
        var pt = new byte[65519];
        var ct = new byte[65535];
        for (var i = 0; i < 2000; i++)
        {
            c.EncryptWithAd(default, pt, ct);
        }
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 20000; i++)
        {
            c.EncryptWithAd(default, pt, ct);
        }
        Console.WriteLine($"ChaCha20-Poly1305 seal, 64 KiB frames: {20000.0 * pt.Length / sw.Elapsed.TotalSeconds / 1e6:N0} MB/s");
    }
}
