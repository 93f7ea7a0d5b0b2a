using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Libp2p.Yamux;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>Yamux sessions over real loopback TCP, and a raw frame writer that plays a hostile peer.</summary>
internal static class YamuxKit
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>Options for tests that speak raw frames: no keep-alive pings in the way.</summary>
    public static YamuxOptions Quiet(int maxStreams = 256, long? connectionWindow = null) => new()
    {
        KeepAliveInterval = Timeout.InfiniteTimeSpan,
        MaxStreams = maxStreams,
        MaxConnectionReceiveWindow = connectionWindow ?? 128L * 1024 * 1024,
    };

    public static async Task<(NetworkStream Dialer, NetworkStream Listener)> TcpPairAsync()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new TcpClient { NoDelay = true };
        var accept = listener.AcceptTcpClientAsync();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var server = await accept;
        server.NoDelay = true;
        return (client.GetStream(), server.GetStream());
    }

    public static async Task<(YamuxSession Client, YamuxSession Server)> SessionPairAsync(YamuxOptions? client = null, YamuxOptions? server = null, TimeProvider? time = null)
    {
        var (a, b) = await TcpPairAsync();
        return (new YamuxSession(a, isClient: true, client, time), new YamuxSession(b, isClient: false, server, time));
    }

    /// <summary>Our session as the server, and a raw peer as the client (odd IDs) on the other end.</summary>
    public static async Task<(YamuxSession Session, RawPeer Peer)> AgainstRawClientAsync(YamuxOptions? options = null, TimeProvider? time = null)
    {
        var (a, b) = await TcpPairAsync();
        return (new YamuxSession(b, isClient: false, options ?? Quiet(), time), new RawPeer(a));
    }

    public static async Task<byte[]> ReadAllAsync(Stream stream, CancellationToken token = default)
    {
        using var memory = new MemoryStream();
        await stream.CopyToAsync(memory, token);
        return memory.ToArray();
    }

    public static async Task ReadExactlyAsync(Stream stream, Memory<byte> buffer) =>
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(Patience);

    public static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Waits until <paramref name="condition"/> holds (polling), failing after the patience.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(10);
        }
    }
}

/// <summary>Writes and reads yamux frames byte by byte, with no session logic: the peer that breaks the rules.</summary>
internal sealed class RawPeer(NetworkStream stream) : IAsyncDisposable
{
    public NetworkStream Stream { get; } = stream;

    public static byte[] Frame(YamuxFrameType type, YamuxFlags flags, uint streamId, uint length, ReadOnlySpan<byte> payload = default, byte version = 0)
    {
        var bytes = new byte[12 + payload.Length];
        bytes[0] = version;
        bytes[1] = (byte)type;
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)flags);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), streamId);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8), length);
        payload.CopyTo(bytes.AsSpan(12));
        return bytes;
    }

    public Task SendAsync(YamuxFrameType type, YamuxFlags flags, uint streamId, uint length) =>
        SendRawAsync(Frame(type, flags, streamId, length));

    public Task SendDataAsync(uint streamId, ReadOnlySpan<byte> payload, YamuxFlags flags = YamuxFlags.None) =>
        SendRawAsync(Frame(YamuxFrameType.Data, flags, streamId, (uint)payload.Length, payload));

    public async Task SendRawAsync(byte[] bytes) => await Stream.WriteAsync(bytes).AsTask().WaitAsync(YamuxKit.Patience);

    /// <summary>The next frame, or null when the connection ended.</summary>
    public async Task<(YamuxHeader Header, byte[] Payload)?> ReadFrameAsync()
    {
        var header = new byte[12];
        try
        {
            await Stream.ReadExactlyAsync(header).AsTask().WaitAsync(YamuxKit.Patience);
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            return null;
        }
        var parsed = new YamuxHeader((YamuxFrameType)header[1], (YamuxFlags)BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2)),
            BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4)), BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8)));
        Assert.Equal(0, header[0]);
        var payload = parsed.Type == YamuxFrameType.Data ? new byte[parsed.Length] : [];
        await Stream.ReadExactlyAsync(payload).AsTask().WaitAsync(YamuxKit.Patience);
        return (parsed, payload);
    }

    /// <summary>Reads frames until one matches; fails if the connection ends first.</summary>
    public async Task<(YamuxHeader Header, byte[] Payload)> ExpectAsync(Func<YamuxHeader, bool> match, string what)
    {
        while (true)
        {
            var frame = await ReadFrameAsync();
            Assert.True(frame is not null, "the connection ended before " + what);
            if (match(frame.Value.Header))
            {
                return frame.Value;
            }
        }
    }

    /// <summary>Reads to the go-away (which must come) and then to the end of the connection; returns its code.</summary>
    public async Task<YamuxGoAwayCode> ExpectGoAwayAndCloseAsync()
    {
        var (header, _) = await ExpectAsync(h => h.Type == YamuxFrameType.GoAway, "a go-away");
        while (await ReadFrameAsync() is not null)
        {
        }
        return (YamuxGoAwayCode)header.Length;
    }

    public ValueTask DisposeAsync() => Stream.DisposeAsync();
}
