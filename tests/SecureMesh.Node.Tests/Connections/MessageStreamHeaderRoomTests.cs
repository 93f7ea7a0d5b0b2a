using SecureMesh.Core;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.Tests.Connections;

/// <summary>
/// A message sent with its length written into room the caller left in front of it (issue 20: a chunk reply's length
/// prefix is no muxer frame, Noise frame and socket write of its own): one write, the same bytes as an ordinary send,
/// and the reader gets the same messages.
/// </summary>
public sealed class MessageStreamHeaderRoomTests
{
    /// <summary>Records every write separately; reads come from what was written.</summary>
    private sealed class WriteLog : Stream
    {
        private readonly MemoryStream _all = new();

        public List<byte[]> Writes { get; } = [];

        public byte[] All => _all.ToArray();

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => _all.Length;

        public override long Position { get => _all.Position; set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            Writes.Add(buffer.AsSpan(offset, count).ToArray());
            _all.Write(buffer, offset, count);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Writes.Add(buffer.ToArray());
            _all.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }
    }

    private static byte[] Message(int length, int seed)
    {
        var message = new byte[length];
        new Random(seed).NextBytes(message);
        return message;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(127)]
    [InlineData(128)]
    [InlineData(5000)]
    [InlineData(16_384)]
    [InlineData(1_048_700)]
    public async Task A_message_sent_with_header_room_is_one_write_of_the_same_bytes_as_an_ordinary_send(int length)
    {
        var message = Message(length, length);
        var ordinary = new WriteLog();
        await using (var stream = new MessageStream(ordinary, 2 * 1024 * 1024))
        {
            await stream.SendAsync(message, CancellationToken.None);
        }
        var roomy = new WriteLog();
        var buffer = new byte[MessageStream.HeaderRoom + length];
        message.CopyTo(buffer, MessageStream.HeaderRoom);
        await using (var stream = new MessageStream(roomy, 2 * 1024 * 1024))
        {
            await stream.SendWithHeaderRoomAsync(buffer, CancellationToken.None);
        }

        var write = Assert.Single(roomy.Writes);
        Assert.Equal(ordinary.All, write);
        Assert.Equal(Varint.Size((ulong)length) + length, write.Length);
        // The message itself was not moved or changed: only the room in front of it was written.
        Assert.Equal(message, buffer.AsSpan(MessageStream.HeaderRoom).ToArray());
    }

    [Fact]
    public async Task Messages_sent_with_header_room_and_ordinary_ones_read_back_in_order()
    {
        var log = new WriteLog();
        int[] sizes = [3, 70_000, 1, 1_100_000, 4096, 200];
        var messages = sizes.Select(Message).ToArray();
        await using (var sender = new MessageStream(log, 2 * 1024 * 1024))
        {
            for (var i = 0; i < messages.Length; i++)
            {
                if (i % 2 == 0)
                {
                    await sender.SendAsync(messages[i], CancellationToken.None);
                    continue;
                }
                var buffer = new byte[MessageStream.HeaderRoom + messages[i].Length];
                messages[i].CopyTo(buffer, MessageStream.HeaderRoom);
                await sender.SendWithHeaderRoomAsync(buffer, CancellationToken.None);
            }
        }

        await using var receiver = new MessageStream(new MemoryStream(log.All), 2 * 1024 * 1024);
        foreach (var expected in messages)
        {
            using var got = await receiver.ReceiveAsync(CancellationToken.None);
            Assert.NotNull(got);
            Assert.Equal(expected, got.Memory.ToArray());
        }
        Assert.Null(await receiver.ReceiveAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_message_over_the_cap_or_a_buffer_without_room_is_refused_and_nothing_is_written()
    {
        var log = new WriteLog();
        await using var stream = new MessageStream(log, 1000);

        var tooBig = await Assert.ThrowsAsync<SecureMeshException>(async () =>
            await stream.SendWithHeaderRoomAsync(new byte[MessageStream.HeaderRoom + 1001], CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, tooBig.Kind);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () =>
            await stream.SendWithHeaderRoomAsync(new byte[MessageStream.HeaderRoom - 1], CancellationToken.None));
        Assert.Empty(log.Writes);

        // Still usable: an empty message right at the room.
        await stream.SendWithHeaderRoomAsync(new byte[MessageStream.HeaderRoom], CancellationToken.None);
        Assert.Equal([0], Assert.Single(log.Writes));
    }
}
