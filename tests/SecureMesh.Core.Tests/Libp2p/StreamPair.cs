using System.Net;
using System.Net.Sockets;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>Two ends of a real loopback TCP connection, for the protocols that run on streams.</summary>
internal sealed class StreamPair : IAsyncDisposable
{
    private StreamPair(Socket a, Socket b)
    {
        SocketA = a;
        SocketB = b;
        A = new NetworkStream(a, ownsSocket: true);
        B = new NetworkStream(b, ownsSocket: true);
    }

    public Socket SocketA { get; }

    public Socket SocketB { get; }

    /// <summary>The connecting end.</summary>
    public NetworkStream A { get; }

    /// <summary>The accepted end.</summary>
    public NetworkStream B { get; }

    public static async Task<StreamPair> OpenAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var a = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = listener.AcceptAsync();
        await a.ConnectAsync(listener.LocalEndPoint!);
        var b = await accept;
        b.NoDelay = true;
        return new StreamPair(a, b);
    }

    /// <summary>Reads from <paramref name="stream"/> until it ends or <paramref name="limit"/> passes; true when it ended.</summary>
    public static async Task<bool> EndsWithinAsync(Stream stream, TimeSpan limit)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(limit);
        try
        {
            while (await stream.ReadAsync(buffer, cts.Token) > 0)
            {
            }
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await A.DisposeAsync();
        await B.DisposeAsync();
    }
}

internal static class Bytes
{
    /// <summary>A multistream-select message: varint length, text, newline.</summary>
    public static byte[] Line(string text)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(text + "\n");
        return [.. Varint(body.Length), .. body];
    }

    public static byte[] Varint(long value)
    {
        var list = new List<byte>();
        var v = (ulong)value;
        while (v >= 0x80)
        {
            list.Add((byte)(v | 0x80));
            v >>= 7;
        }
        list.Add((byte)v);
        return [.. list];
    }

    public static async Task<byte[]> ReadExactlyAsync(Stream stream, int count, CancellationToken ct)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer, ct);
        return buffer;
    }
}
