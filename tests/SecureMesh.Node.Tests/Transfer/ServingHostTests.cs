using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// The protocol handler driven through a real connection with a small fake <see cref="IServingHost"/> instead of a
/// whole transfer engine: what it asks the host, and that it serves nothing the host does not allow.
/// </summary>
public sealed class ServingHostTests : IAsyncLifetime
{
    private const int ChunkSize = 16 * 1024;
    private readonly string _home = Directory.CreateTempSubdirectory("securemesh-serving-").FullName;
    private readonly FakeHost _host = new();
    private readonly NodeIdentity _nodeIdentity = NodeIdentity.Generate();
    private readonly NodeIdentity _peerIdentity = NodeIdentity.Generate();
    private SecureMeshDatabase _db = null!;
    private MeshNode _node = null!;
    private PeerLink _peer = null!;

    public async Task InitializeAsync()
    {
        _db = SecureMeshDatabase.Open(_home);
        _db.Trust.AddPeer(_peerIdentity.PeerId, null, null, trusted: true);
        var options = TransferNode.Fast();
        _node = MeshNode.Start(_nodeIdentity, _db, new NodeOptions
        {
            Home = _home,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            HandshakeTimeout = TimeSpan.FromSeconds(3),
            SessionHandler = (session, ct) => new ProtocolSession(session, session.Messages!, _host, options, NullLogger.Instance).RunAsync(ct),
        });
        _peer = await PeerLink.DialAsync(_peerIdentity, _node.LocalEndPoint, _nodeIdentity.PeerId, TimeSpan.FromSeconds(5), CancellationToken.None);
        await SendAsync(new Hello(0, WireLimits.ProtocolVersion, ["chunk"], WireLimits.DefaultMaxMessageSize));
        Assert.IsType<Hello>(await ReceiveAsync());
    }

    public async Task DisposeAsync()
    {
        await _peer.DisposeAsync();
        await _node.DisposeAsync();
        _db.Dispose();
        _nodeIdentity.Dispose();
        _peerIdentity.Dispose();
        Directory.Delete(_home, recursive: true);
    }

    [Fact]
    public async Task Search_asks_the_host_for_this_peer_and_drops_blocked_hits()
    {
        var shown = ContentId.FromHash(new byte[32]);
        var blocked = ContentId.FromHash(Enumerable.Repeat((byte)1, 32).ToArray());
        _host.Entries = [Entry("shown.txt", shown), Entry("blocked.txt", blocked)];
        _host.Blocked.Add(blocked.Text);

        await SendAsync(new SearchRequest(7, "txt", 10));
        var response = Assert.IsType<SearchResponse>(await ReceiveAsync());

        Assert.Equal(7u, response.RequestId);
        Assert.Equal([shown], response.Results.Select(r => r.ContentId));
        Assert.Equal([(_peerIdentity.PeerId, "txt")], _host.Searches);
    }

    [Fact]
    public async Task Content_the_peer_may_not_see_gets_the_not_found_answer_before_anything_else_is_asked()
    {
        var id = ContentId.FromHash(new byte[32]);
        _host.Blocked.Add(id.Text); // blocked too, but outside the audience wins: the peer learns nothing

        await SendAsync(new ManifestRequest(3, id));
        var error = Assert.IsType<ErrorMessage>(await ReceiveAsync());

        Assert.Equal(WireErrorCode.NotFound, error.Code);
        Assert.Empty(_host.Found);
    }

    [Fact]
    public async Task Blocked_visible_content_is_refused_as_blocked_and_unknown_content_as_not_found()
    {
        var blocked = ContentId.FromHash(new byte[32]);
        var unknown = ContentId.FromHash(Enumerable.Repeat((byte)2, 32).ToArray());
        _host.Visible.Add(blocked.Text);
        _host.Visible.Add(unknown.Text);
        _host.Blocked.Add(blocked.Text);

        await SendAsync(new HaveRequest(4, blocked));
        Assert.Equal(WireErrorCode.Blocked, Assert.IsType<ErrorMessage>(await ReceiveAsync()).Code);
        await SendAsync(new HaveRequest(5, unknown));
        Assert.Equal(WireErrorCode.NotFound, Assert.IsType<ErrorMessage>(await ReceiveAsync()).Code);
        Assert.Equal([unknown.Text], _host.Found);
    }

    [Fact]
    public async Task A_visible_manifest_is_served_and_a_file_changed_on_disk_is_reported_to_the_host_not_served()
    {
        var id = ContentId.FromHash(new byte[32]);
        _host.Visible.Add(id.Text);
        var path = Path.Combine(_home, "gone.bin"); // never written: reading the chunk fails like a changed file
        _host.Content = new SharedContent(_home, path, 0, 0, 2 * ChunkSize, 0, MerkleTree.Build(new byte[64], 2 * ChunkSize, ChunkSize), [1, 2, 3]);

        await SendAsync(new ManifestRequest(8, id));
        Assert.Equal([1, 2, 3], Assert.IsType<ManifestResponse>(await ReceiveAsync()).Manifest.ToArray());

        await SendAsync(new ChunkRequest(9, id, 1));
        Assert.Equal(WireErrorCode.Changed, Assert.IsType<ErrorMessage>(await ReceiveAsync()).Code);
        Assert.Equal([path], _host.Changed.Select(c => c.Path));
    }

    private static CatalogEntry Entry(string name, ContentId id) =>
        new(name, "/share", name, 10, 0, id.Text, ChunkSize, DateTimeOffset.UnixEpoch, new byte[32], new byte[1]);

    private Task SendAsync(WireMessage message) => _peer.SendAsync(WireCodec.Encode(message), CancellationToken.None);

    private async Task<WireMessage> ReceiveAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return WireCodec.Decode(await _peer.ReceiveAsync(cts.Token));
    }

    private sealed class FakeHost : IServingHost
    {
        public ConcurrentBag<string> Visible { get; } = [];

        public ConcurrentBag<string> Blocked { get; } = [];

        public IReadOnlyList<CatalogEntry> Entries { get; set; } = [];

        public SharedContent? Content { get; set; }

        public ConcurrentQueue<(PeerId, string)> Searches { get; } = new();

        public ConcurrentQueue<string> Found { get; } = new();

        public ConcurrentQueue<SharedContent> Changed { get; } = new();

        public bool CanSee(PeerId peer, string contentId) => Visible.Contains(contentId);

        public bool IsBlocked(string contentId) => Blocked.Contains(contentId);

        public IReadOnlyList<CatalogEntry> Search(PeerId peer, string query, int limit)
        {
            Searches.Enqueue((peer, query));
            return Entries;
        }

        public SharedContent? Find(PeerId peer, ContentId id)
        {
            Found.Enqueue(id.Text);
            return Content;
        }

        public void ContentChanged(SharedContent content) => Changed.Enqueue(content);

        public long UploadLimit() => 0;
    }
}
