using System.Buffers.Binary;
using SecureMesh.Core;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Libp2p.Yamux;

namespace SecureMesh.Fuzz.Targets;

/// <summary>
/// A whole yamux session (the server side, no keep-alive) reading the input as what the peer sends: frames parsed,
/// streams opened and accepted, data checked against windows, pings answered. The first input byte says how many bytes
/// each transport read hands out (0: as many as asked), so frames split across reads are reached too. An application
/// accepts every stream and reads it to its end. The session must end (the input ends in a clean end of stream) within
/// the bound, by a protocol error or a closed connection, never by an internal error; a stream may only fail with a
/// <see cref="SecureMeshException"/>; and no stream may buffer more than its window.
/// </summary>
internal static class YamuxTarget
{
    public static FuzzTarget Target { get; } = new("yamux", "YamuxSession reading hostile frames: header checks, stream state, windows, pings", Run, Seeds);

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    private static readonly YamuxOptions Options = new()
    {
        KeepAliveInterval = Timeout.InfiniteTimeSpan,
        MaxStreams = 8,
        MaxConnectionReceiveWindow = 8L * YamuxOptions.InitialWindow,
        CloseTimeout = TimeSpan.FromSeconds(1),
    };

    public static bool Run(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return false;
        }
        var perRead = data[0] == 0 ? int.MaxValue : data[0];
        var input = data[1..].ToArray();
        var run = Task.Run(() => RunAsync(input, perRead));
        if (!run.Wait(Bound))
        {
            throw Expected.Finding($"the session did not end within {Bound.TotalSeconds} s of a {input.Length}-byte input");
        }
        return run.GetAwaiter().GetResult();
    }

    private static async Task<bool> RunAsync(byte[] input, int perRead)
    {
        var transport = new InputStream(input, perRead);
        var session = new YamuxSession(transport, isClient: false, Options);
        var readers = new List<Task>();
        try
        {
            while (true)
            {
                var stream = await session.AcceptStreamAsync().ConfigureAwait(false);
                readers.Add(DrainAsync(stream));
            }
        }
        catch (SecureMeshException)
        {
            // The session ended.
        }
        await session.Completion.ConfigureAwait(false);
        await Task.WhenAll(readers).ConfigureAwait(false);
        var reason = session.ClosedReason ?? throw Expected.Finding("the session completed without a reason");
        if (reason.StartsWith("internal error", StringComparison.Ordinal))
        {
            throw Expected.Finding("the session failed internally: " + reason);
        }
        return !reason.StartsWith("yamux protocol error", StringComparison.Ordinal);
    }

    private static async Task DrainAsync(YamuxStream stream)
    {
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                if (stream.BufferedBytes > stream.ReceiveWindow)
                {
                    throw Expected.Finding($"stream {stream.Id} buffers {stream.BufferedBytes} bytes, beyond its window of {stream.ReceiveWindow}");
                }
                if (await stream.ReadAsync(buffer).ConfigureAwait(false) == 0)
                {
                    break;
                }
            }
            await stream.WriteAsync(buffer.AsMemory(0, 16)).ConfigureAwait(false);
            await stream.CloseWriteAsync().ConfigureAwait(false);
        }
        catch (SecureMeshException)
        {
            // Reset, or the session ended: the documented failures.
        }
        catch (InvalidOperationException)
        {
            // Writing after our own close: cannot happen here, but it is the documented misuse error.
        }
        finally
        {
            stream.Dispose();
        }
    }

    private static IReadOnlyList<byte[]> Seeds()
    {
        static byte[] F(YamuxFrameType type, YamuxFlags flags, uint id, uint length, ReadOnlySpan<byte> payload = default)
        {
            var bytes = new byte[12 + payload.Length];
            bytes[1] = (byte)type;
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)flags);
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), id);
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8), length);
            payload.CopyTo(bytes.AsSpan(12));
            return bytes;
        }
        return
        [
            // One stream: open with data, more data, half-close.
            [0, .. F(YamuxFrameType.Data, YamuxFlags.Syn, 1, 5, "hello"u8), .. F(YamuxFrameType.Data, YamuxFlags.None, 1, 3, "abc"u8), .. F(YamuxFrameType.WindowUpdate, YamuxFlags.Fin, 1, 0)],
            // Ping, a window update opening a stream with extra window, a reset, a go-away; read 3 bytes at a time.
            [3, .. F(YamuxFrameType.Ping, YamuxFlags.Syn, 0, 7), .. F(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 3, 1000), .. F(YamuxFrameType.WindowUpdate, YamuxFlags.Rst, 3, 0),
                .. F(YamuxFrameType.GoAway, YamuxFlags.None, 0, 0)],
            // Streams out of order and several at once, with data and FIN in one frame.
            [0, .. F(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 5, 0), .. F(YamuxFrameType.Data, YamuxFlags.Syn | YamuxFlags.Fin, 1, 2, "ok"u8), .. F(YamuxFrameType.Data, YamuxFlags.Syn, 3, 1, "x"u8),
                .. F(YamuxFrameType.Data, YamuxFlags.Fin, 5, 0)],
        ];
    }

    /// <summary>Hands out the input a few bytes per read, then a clean end; swallows what the session writes.</summary>
    private sealed class InputStream(byte[] input, int perRead) : DuplexStream
    {
        private int _position;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = Math.Min(Math.Min(buffer.Length, perRead), input.Length - _position);
            input.AsSpan(_position, n).CopyTo(buffer.Span);
            _position += n;
            return ValueTask.FromResult(n);
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public override void Write(byte[] buffer, int offset, int count)
        {
        }

        public override void Flush()
        {
        }

    }
}
