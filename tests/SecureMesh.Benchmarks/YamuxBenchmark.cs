using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Yamux;

namespace SecureMesh.Benchmarks;

/// <summary>
/// <c>yamux [SECONDS] [ROUNDS] [tcp]</c>: one yamux stream against the bare connection it runs over, on loopback, in
/// interleaved pairs (bare then yamux, yamux then bare, ...) so that the machine's load drifts over both alike; prints
/// each pair and the medians. The bare encrypted channel (the libp2p Noise transport, <see cref="UpgradedConnection.Stream"/>,
/// after the node's upgrade: multistream, Noise XX) against one yamux stream over another such connection; with
/// <c>tcp</c>, also plain TCP against one yamux stream over plain TCP. Every carrier is sent the same 64 KiB
/// application messages and read into a 64 KiB buffer.
/// </summary>
internal static class YamuxBenchmark
{
    private const int Chunk = 64 * 1024;

    public static async Task RunAsync(double seconds, int rounds, bool withTcp)
    {
        using var a = NodeIdentity.Generate();
        using var b = NodeIdentity.Generate();

        // The bare encrypted channel: the libp2p Noise transport itself (multistream /noise, Noise XX, the NoiseStream
        // every node connection runs on), with no muxer on it. Yamux runs over a second connection upgraded the same
        // way, as every node connection is. Separate connections for each carrier, so that no run shares a socket.
        var (bareSender, bareReceiver) = await UpgradedPairAsync(a, b);
        var (y1, y2) = await UpgradedPairAsync(a, b);
        var yamuxOverSecureClient = new YamuxSession(y1, isClient: true);
        var yamuxOverSecureServer = new YamuxSession(y2, isClient: false);

        var (rawSender, rawReceiver) = await PairAsync();
        var (t1, t2) = await PairAsync();
        var yamuxOverTcpClient = new YamuxSession(t1, isClient: true);
        var yamuxOverTcpServer = new YamuxSession(t2, isClient: false);

        var secureStream = await OpenAsync(yamuxOverSecureClient, yamuxOverSecureServer);
        var tcpStream = await OpenAsync(yamuxOverTcpClient, yamuxOverTcpServer);

        var message = new byte[Chunk];
        Random.Shared.NextBytes(message);
        var sink = new byte[Chunk];

        if (Environment.GetEnvironmentVariable("YAMUX_PROFILE") is { } only)
        {
            // For a profiler (perf record): one carrier only, for SECONDS x ROUNDS.
            Func<long, Task> chosen = only switch
            {
                "bare" => bytes => StreamPairAsync(bareSender, bareReceiver, message, sink, bytes),
                _ => bytes => StreamPairAsync(secureStream.Writer, secureStream.Reader, message, sink, bytes),
            };
            await chosen(256L << 20);
            var directBefore = secureStream.Reader.BytesDeliveredDirectly;
            var measured = await MeasureAsync(chosen, seconds * rounds);
            var directShare = (double)(secureStream.Reader.BytesDeliveredDirectly - directBefore) / measured.Bytes;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{only}: {measured.Rate:N0} MB/s, {measured.CpuPerGb:N2} CPU s/GB; yamux bytes read without a copy {100 * directShare:N0}%"));
            return;
        }

        Task Bare(long bytes) => StreamPairAsync(bareSender, bareReceiver, message, sink, bytes);
        Task Raw(long bytes) => StreamPairAsync(rawSender, rawReceiver, message, sink, bytes);
        Task OverSecure(long bytes) => StreamPairAsync(secureStream.Writer, secureStream.Reader, message, sink, bytes);
        Task OverTcp(long bytes) => StreamPairAsync(tcpStream.Writer, tcpStream.Reader, message, sink, bytes);

        // Warm-up: JIT, pools, and the yamux windows' first growth.
        foreach (var run in withTcp ? new Func<long, Task>[] { Bare, OverSecure, Raw, OverTcp } : [Bare, OverSecure])
        {
            await run(256L << 20);
        }

        var results = new List<(double Bare, double Yamux, double Raw, double YamuxTcp)>();
        var cpu = new List<(double Bare, double Yamux, double Raw, double YamuxTcp)>();
        var direct = new List<double>();
        for (var round = 1; round <= rounds; round++)
        {
            // Each pair in both orders in turn (bare first in odd rounds, yamux first in even ones), so neither arm
            // always runs after the other's garbage or in the same phase of the machine's load.
            var directBefore = secureStream.Reader.BytesDeliveredDirectly;
            Measurement bare, yamux;
            if (round % 2 == 1)
            {
                bare = await MeasureAsync(Bare, seconds);
                yamux = await MeasureAsync(OverSecure, seconds);
            }
            else
            {
                yamux = await MeasureAsync(OverSecure, seconds);
                bare = await MeasureAsync(Bare, seconds);
            }
            direct.Add((double)(secureStream.Reader.BytesDeliveredDirectly - directBefore) / yamux.Bytes);
            var raw = withTcp ? await MeasureAsync(Raw, seconds) : default;
            var yamuxTcp = withTcp ? await MeasureAsync(OverTcp, seconds) : default;
            results.Add((bare.Rate, yamux.Rate, raw.Rate, yamuxTcp.Rate));
            cpu.Add((bare.CpuPerGb, yamux.CpuPerGb, raw.CpuPerGb, yamuxTcp.CpuPerGb));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"round {round}: bare Noise channel {bare.Rate:N0} MB/s, one yamux stream over it {yamux.Rate:N0} MB/s ({100 * yamux.Rate / bare.Rate:N1}%); " +
                $"CPU s/GB (both ends) {bare.CpuPerGb:N2} / {yamux.CpuPerGb:N2}; yamux bytes read without a copy {100 * direct[^1]:N0}%; " +
                $"receive window {secureStream.Reader.ReceiveWindow / 1024} KiB") +
                (withTcp ? string.Create(CultureInfo.InvariantCulture,
                    $"; raw TCP {raw.Rate:N0} MB/s, one yamux stream over TCP {yamuxTcp.Rate:N0} MB/s ({100 * yamuxTcp.Rate / raw.Rate:N1}%), CPU s/GB {raw.CpuPerGb:N2} / {yamuxTcp.CpuPerGb:N2}") : ""));
        }
        double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
        }
        var ratios = results.Select(r => r.Yamux / r.Bare).ToArray();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"median of {rounds} pairs of {seconds:0.#} s: bare Noise channel {Median(results.Select(r => r.Bare)):N0} MB/s, yamux over it {Median(results.Select(r => r.Yamux)):N0} MB/s, " +
            $"median ratio {100 * Median(ratios):N1}% (pairs {100 * ratios.Min():N1}-{100 * ratios.Max():N1}%)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"median CPU seconds per GB (process, both ends): bare Noise channel {Median(cpu.Select(c => c.Bare)):N2}, yamux over it {Median(cpu.Select(c => c.Yamux)):N2} " +
            $"(ratio {Median(cpu.Select(c => c.Yamux / c.Bare)):N2}); yamux bytes read without a copy {100 * Median(direct):N0}%"));
        if (withTcp)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"raw TCP {Median(results.Select(r => r.Raw)):N0} MB/s, yamux over TCP {Median(results.Select(r => r.YamuxTcp)):N0} MB/s, median ratio {100 * Median(results.Select(r => r.YamuxTcp / r.Raw)):N1}%; " +
                $"CPU s/GB {Median(cpu.Select(c => c.Raw)):N2} / {Median(cpu.Select(c => c.YamuxTcp)):N2}"));
        }

        await yamuxOverSecureClient.DisposeAsync();
        await yamuxOverSecureServer.DisposeAsync();
        await yamuxOverTcpClient.DisposeAsync();
        await yamuxOverTcpServer.DisposeAsync();
        await bareSender.DisposeAsync();
        await bareReceiver.DisposeAsync();
        await rawSender.DisposeAsync();
        await rawReceiver.DisposeAsync();
    }

    /// <summary><c>yamux-sink PORT</c>: accepts one TCP connection, reads one yamux stream to its end, prints the rate.</summary>
    public static async Task SinkAsync(int port)
    {
        using var listener = new TcpListener(IPAddress.Any, port);
        listener.Start();
        Console.WriteLine("LISTENING " + port.ToString(CultureInfo.InvariantCulture));
        var tcp = await listener.AcceptTcpClientAsync();
        await using var session = new YamuxSession(tcp.GetStream(), isClient: false);
        var stream = await session.AcceptStreamAsync();
        var buffer = new byte[Chunk];
        long total = 0;
        var first = await stream.ReadAsync(buffer);
        var sw = Stopwatch.StartNew();
        total += first;
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            total += n;
        }
        var seconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RECEIVED {total} bytes in {seconds:N2} s: {total * 8 / seconds / 1e6:N0} Mbit/s; receive window {stream.ReceiveWindow / 1024} KiB; round trip {session.RoundTripTime?.TotalMilliseconds:N1} ms"));
        await stream.WriteAsync(new byte[1]);
        await stream.CloseWriteAsync();
    }

    /// <summary><c>yamux-source HOST PORT SECONDS</c>: one yamux stream, written as fast as it goes for SECONDS.</summary>
    public static async Task SourceAsync(string host, int port, double seconds)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(host, port);
        await using var session = new YamuxSession(tcp.GetStream(), isClient: true);
        var stream = await session.OpenStreamAsync();
        var message = new byte[Chunk];
        Random.Shared.NextBytes(message);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            await stream.WriteAsync(message);
        }
        await stream.CloseWriteAsync();
        await stream.ReadExactlyAsync(new byte[1]); // the sink has read everything
    }

    private static async Task<(YamuxStream Writer, YamuxStream Reader)> OpenAsync(YamuxSession client, YamuxSession server)
    {
        var writer = await client.OpenStreamAsync();
        await writer.WriteAsync(new byte[1]);
        var reader = await server.AcceptStreamAsync();
        await reader.ReadExactlyAsync(new byte[1]);
        return (writer, reader);
    }

    private static async Task StreamPairAsync(Stream writer, Stream reader, byte[] message, byte[] sink, long bytes)
    {
        var receive = Task.Run(async () =>
        {
            var left = bytes;
            while (left > 0)
            {
                var n = await reader.ReadAsync(sink.AsMemory(0, (int)Math.Min(sink.Length, left)));
                if (n == 0)
                {
                    throw new EndOfStreamException();
                }
                left -= n;
            }
        });
        for (long sent = 0; sent < bytes; sent += message.Length)
        {
            await writer.WriteAsync(message);
        }
        await receive;
    }

    /// <summary>Bytes carried, wall-clock MB/s, and process CPU seconds per GB (steadier than MB/s on a shared machine).</summary>
    private readonly record struct Measurement(long Bytes, double Rate, double CpuPerGb);

    private static async Task<Measurement> MeasureAsync(Func<long, Task> run, double seconds)
    {
        const long Batch = 64L << 20;
        long bytes = 0;
        using var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            await run(Batch);
            bytes += Batch;
        }
        var elapsed = sw.Elapsed.TotalSeconds;
        process.Refresh();
        return new(bytes, bytes / elapsed / 1e6, (process.TotalProcessorTime - cpuBefore).TotalSeconds / (bytes / 1e9));
    }

    /// <summary>A loopback TCP connection upgraded as the node upgrades every connection; the two ends' secured streams.</summary>
    private static async Task<(Stream Dialer, Stream Listener)> UpgradedPairAsync(NodeIdentity dialer, NodeIdentity listener)
    {
        var (s1, s2) = await PairAsync();
        var upgradeOut = new Upgrader(dialer).UpgradeOutboundAsync(s1, listener.PeerId, CancellationToken.None);
        var upgradeIn = new Upgrader(listener).UpgradeInboundAsync(s2, CancellationToken.None);
        return ((await upgradeOut).Stream, (await upgradeIn).Stream);
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
}
