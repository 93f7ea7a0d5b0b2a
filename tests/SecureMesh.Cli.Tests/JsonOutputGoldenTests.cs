using System.Globalization;
using System.Text.RegularExpressions;
using SecureMesh.Cli.Commands;
using SecureMesh.Cli.Json;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Backup;
using SecureMesh.Node.Control;
using SecureMesh.Node.Quarantine;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Tests;

/// <summary>
/// Every <c>--json</c> output pinned as a whole document, byte for byte (key order, casing, nulls, escaping, layout):
/// scripts read these, so a change of serializer must not change one character. What differs from run to run (the data
/// directory, Peer IDs, fingerprints, times, audit hashes, elapsed seconds) is replaced by a fixed name before the
/// comparison; everything else is compared as printed. Commands that need no network run end to end; the outputs of
/// commands that need peers are written from fixed values through the same code the commands call.
/// </summary>
public sealed partial class JsonOutputGoldenTests : IDisposable
{
    private const string Cid = "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst";
    private readonly CliHarness _cli = new();
    private readonly List<(string Value, string Name)> _names = [];

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void Init_and_id()
    {
        // A loopback listen address, so the multiaddrs do not depend on this machine's interfaces.
        Json("config", "set", "listen", "127.0.0.1:4747");
        var init = Json("init", "--json");
        Name(PeerIdOf(init), "PEER");
        Assert.Equal("""
            {
              "peerId": "PEER",
              "fingerprint": "PEER_FP",
              "listen": [
                "127.0.0.1:4747"
              ],
              "multiaddrs": [
                "/ip4/127.0.0.1/tcp/4747/p2p/PEER"
              ],
              "encrypted": false,
              "home": "HOME"
            }

            """, Normalize(init));
        Assert.Equal(Normalize(init), Normalize(Json("id", "--json")));
    }

    [Fact]
    public void Peers_blocklist_log_and_unblock()
    {
        Json("init");
        // Named in the order of their Peer IDs, so every list comes out in the order pinned below, whatever it is sorted by.
        var ids = Sorted(4);
        var (bob, known, other, spammer) = (ids[0], ids[1], ids[2], ids[3]);
        Name(known, "KNOWN");
        Name(bob, "BOB");
        Name(spammer, "SPAMMER");
        Name(other, "OTHER");
        Json("peers", "add", known.Text, "--addr", "127.0.0.1:4747", "--name", "known");
        Json("peers", "add", bob.Text, "--trust", "--name", "Zoë \"q\" <b>&amp; 日本");
        Json("peers", "add", spammer.Text);
        Json("peers", "block", spammer.Text, "--reason", "spam \\ \"quoted\"");
        Json("peers", "add", other.Text);
        Json("peers", "block", other.Text);
        Json("block", "addr", "192.0.2.0/24", "--reason", "test");
        Json("block", "content", Cid);

        Assert.Equal("""
            [
              {
                "peerId": "BOB",
                "name": "Zoë \"q\" <b>&amp; 日本",
                "state": "trusted",
                "addresses": [],
                "fingerprint": "BOB_FP",
                "firstSeen": null,
                "lastSeen": null,
                "blockReason": null,
                "connected": false,
                "refusingUs": false,
                "refusedAt": null
              },
              {
                "peerId": "KNOWN",
                "name": "known",
                "state": "pending",
                "addresses": [
                  "127.0.0.1:4747"
                ],
                "fingerprint": "KNOWN_FP",
                "firstSeen": null,
                "lastSeen": null,
                "blockReason": null,
                "connected": false,
                "refusingUs": false,
                "refusedAt": null
              },
              {
                "peerId": "OTHER",
                "name": null,
                "state": "blocked",
                "addresses": [],
                "fingerprint": "OTHER_FP",
                "firstSeen": null,
                "lastSeen": null,
                "blockReason": null,
                "connected": false,
                "refusingUs": false,
                "refusedAt": null
              },
              {
                "peerId": "SPAMMER",
                "name": null,
                "state": "blocked",
                "addresses": [],
                "fingerprint": "SPAMMER_FP",
                "firstSeen": null,
                "lastSeen": null,
                "blockReason": "spam \\ \"quoted\"",
                "connected": false,
                "refusingUs": false,
                "refusedAt": null
              }
            ]

            """, Normalize(Json("peers", "list", "--json")));
        Assert.Equal("""
            [
              {
                "peerId": "KNOWN",
                "name": "known",
                "state": "pending",
                "addresses": [
                  "127.0.0.1:4747"
                ],
                "fingerprint": "KNOWN_FP",
                "firstSeen": null,
                "lastSeen": null,
                "blockReason": null,
                "connected": false,
                "refusingUs": false,
                "refusedAt": null
              }
            ]

            """, Normalize(Json("peers", "pending", "--json")));
        Assert.Equal("""
            {
              "peers": [
                {
                  "peerId": "OTHER",
                  "name": null,
                  "reason": null,
                  "time": "TIME+00:00"
                },
                {
                  "peerId": "SPAMMER",
                  "name": null,
                  "reason": "spam \\ \"quoted\"",
                  "time": "TIME+00:00"
                }
              ],
              "addresses": [
                {
                  "cidr": "192.0.2.0/24",
                  "reason": "test",
                  "time": "TIME+00:00"
                }
              ],
              "content": [
                {
                  "contentId": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
                  "reason": null,
                  "time": "TIME+00:00"
                }
              ]
            }

            """, Normalize(Json("blocklist", "--json")));
        Assert.Equal("""
            [
              {
                "seq": 6,
                "time": "TIME+00:00",
                "event": "peer.blocked",
                "peerId": "OTHER",
                "detail": "from=pending reason=-",
                "hash": "HASH"
              },
              {
                "seq": 7,
                "time": "TIME+00:00",
                "event": "addr.blocked",
                "peerId": null,
                "detail": "cidr=192.0.2.0/24 reason=test",
                "hash": "HASH"
              },
              {
                "seq": 8,
                "time": "TIME+00:00",
                "event": "content.blocked",
                "peerId": null,
                "detail": "content=b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst reason=-",
                "hash": "HASH"
              }
            ]

            """, Normalize(Json("log", "--json", "--limit", "3")));
        Assert.Equal("""
            {
              "ok": true,
              "entries": 8,
              "brokenSeq": null,
              "reason": null,
              "headSeq": 8,
              "headHash": "HASH"
            }

            """, Normalize(Json("log", "--verify", "--json")));
        Assert.Equal("""
            {
              "peerId": "SPAMMER",
              "fingerprint": "SPAMMER_FP",
              "state": "pending"
            }

            """, Normalize(Json("peers", "unblock", spammer.Text, "--json")));
        Assert.Equal("""
            {
              "peerId": "OTHER",
              "fingerprint": "OTHER_FP",
              "state": "trusted"
            }

            """, Normalize(Json("peers", "unblock", other.Text, "--trust", "--json")));
    }

    [Fact]
    public void Config_list_get_and_set()
    {
        Json("init");
        Assert.Equal("""
            [
              {
                "key": "listen",
                "value": "0.0.0.0:4747",
                "isDefault": true,
                "description": "TCP address to listen on (HOST:PORT or /ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT; a name is resolved when the node starts)"
              },
              {
                "key": "download-dir",
                "value": "~/Downloads/SecureMesh",
                "isDefault": true,
                "description": "folder released downloads are moved to"
              },
              {
                "key": "scanner",
                "value": "",
                "isDefault": true,
                "description": "virus scanner command, ClamAV convention: exit 0 clean, 1 infected; {} is replaced by the file (empty: none)"
              },
              {
                "key": "scanner-timeout",
                "value": "120",
                "isDefault": true,
                "description": "seconds the scanner may run before the file is held"
              },
              {
                "key": "chunk-size",
                "value": "1048576",
                "isDefault": true,
                "description": "chunk size for newly shared files (power of two, 16KiB..16MiB; a chunk and its proof must fit in one message)"
              },
              {
                "key": "upload-limit",
                "value": "0",
                "isDefault": true,
                "description": "per-peer upload limit in bytes per second, 0 for none (suffixes k, m, g)"
              },
              {
                "key": "discovery",
                "value": "on",
                "isDefault": true,
                "description": "LAN discovery beacons (on/off)"
              },
              {
                "key": "max-connections",
                "value": "256",
                "isDefault": true,
                "description": "most authenticated connections at once"
              },
              {
                "key": "handshake-timeout",
                "value": "5",
                "isDefault": true,
                "description": "seconds a peer has to finish the handshake"
              },
              {
                "key": "port-mapping",
                "value": "on",
                "isDefault": true,
                "description": "ask the home router to forward the listen port (PCP, else NAT-PMP) and advertise the mapped address (on/off)"
              },
              {
                "key": "relay-service",
                "value": "trusted",
                "isDefault": true,
                "description": "relay service for others: trusted (reservations and circuits for peers this node trusts) or off"
              },
              {
                "key": "relays",
                "value": "",
                "isDefault": true,
                "description": "relays to reserve a slot on, comma-separated multiaddrs ending in /p2p/PEERID (trusted peers offering relay service are used too)"
              },
              {
                "key": "relay-circuit-data",
                "value": "0",
                "isDefault": true,
                "description": "bytes a relayed circuit may carry each way through this node's relay service, 0 for no limit (suffixes k, m, g)"
              },
              {
                "key": "relay-circuit-duration",
                "value": "0",
                "isDefault": true,
                "description": "seconds a relayed circuit through this node's relay service may last, 0 for no limit"
              },
              {
                "key": "relay-circuits-per-peer",
                "value": "8",
                "isDefault": true,
                "description": "circuits one peer may have through this node's relay service at once"
              },
              {
                "key": "backup-check-interval",
                "value": "86400",
                "isDefault": true,
                "description": "seconds between proof-of-storage rounds against backup holders"
              }
            ]

            """, Normalize(Json("config", "list", "--json")));
        Assert.Equal("""
            {
              "key": "listen",
              "value": "0.0.0.0:4747"
            }

            """, Normalize(Json("config", "get", "listen", "--json")));
        Assert.Equal("""
            {
              "key": "chunk-size",
              "value": "524288",
              "applied": "stored",
              "note": null
            }

            """, Normalize(Json("config", "set", "chunk-size", "512k", "--json")));
    }

    [Fact]
    public void Share_add_set_list_skipped_and_remove()
    {
        Json("init");
        var folder = Path.Combine(_cli.Root, "shared");
        Directory.CreateDirectory(Path.Combine(folder, "sub"));
        File.WriteAllText(Path.Combine(folder, "a \"quoted\" name.txt"), "hello");
        File.WriteAllText(Path.Combine(folder, "sub", "b.bin"), new string('x', 70_000));
        File.WriteAllText(Path.Combine(folder, ".hidden"), "secret");
        File.CreateSymbolicLink(Path.Combine(folder, "link"), "/etc/passwd");

        Assert.Equal("""
            {
              "path": "ROOT/shared",
              "files": 2,
              "indexed": 2,
              "unchanged": 0,
              "removed": 0,
              "bytesHashed": 70005,
              "seconds": SECONDS,
              "failed": [],
              "skipped": 2
            }

            """, Normalize(Json("share", "add", folder, "--json")));
        Assert.Equal("""
            {
              "path": "ROOT/shared",
              "audience": "all",
              "changed": false
            }

            """, Normalize(Json("share", "set", folder, "--with", "all", "--json")));
        Assert.Equal("""
            {
              "shares": [
                "ROOT/shared"
              ],
              "audiences": [
                {
                  "path": "ROOT/shared",
                  "audience": "all"
                }
              ],
              "files": [
                {
                  "path": "ROOT/shared/a \"quoted\" name.txt",
                  "name": "a \"quoted\" name.txt",
                  "size": 5,
                  "contentId": "b3:tm37g3sswsptrw53hcddla3jv3hkfvx6m5ocafqzjkwqaj3yl53a",
                  "share": "ROOT/shared",
                  "audience": "all"
                },
                {
                  "path": "ROOT/shared/sub/b.bin",
                  "name": "b.bin",
                  "size": 70000,
                  "contentId": "b3:lro63dmpy6aw7lev4pbknssbatva6azpv3e2nodhbflgsvo6t4cq",
                  "share": "ROOT/shared",
                  "audience": "all"
                }
              ],
              "includeHidden": []
            }

            """, Normalize(Json("share", "list", "--json")));
        Assert.Equal("""
            {
              "skipped": [
                {
                  "path": "ROOT/shared/.hidden",
                  "reason": "hidden (share with --include-hidden to include it)",
                  "share": "ROOT/shared"
                },
                {
                  "path": "ROOT/shared/link",
                  "reason": "a symbolic link; links are never followed",
                  "share": "ROOT/shared"
                }
              ]
            }

            """, Normalize(Json("share", "list", "--skipped", "--json")));
        Assert.Equal("""
            {
              "path": "ROOT/shared",
              "removed": true
            }

            """, Normalize(Json("share", "remove", folder, "--json")));
    }

    [Fact]
    public void Groups_create_add_list_remove_and_delete()
    {
        Json("init");
        var ids = Sorted(2);
        var (carol, bob) = (ids[0], ids[1]);
        Name(bob, "BOB");
        Name(carol, "CAROL");
        Json("peers", "add", bob.Text, "--trust", "--name", "bob");
        Json("peers", "add", carol.Text);

        Assert.Equal("""
            {
              "name": "family",
              "members": [],
              "created": "TIME+00:00"
            }

            """, Normalize(Json("groups", "create", "family", "--json")));
        Assert.Equal("""
            {
              "group": "family",
              "changed": 2
            }

            """, Normalize(Json("groups", "add", "family", bob.Text, carol.Text, "--json")));
        Assert.Equal("""
            [
              {
                "name": "family",
                "members": [
                  {
                    "peerId": "CAROL",
                    "name": null,
                    "state": "pending",
                    "fingerprint": "CAROL_FP"
                  },
                  {
                    "peerId": "BOB",
                    "name": "bob",
                    "state": "trusted",
                    "fingerprint": "BOB_FP"
                  }
                ],
                "created": "TIME+00:00"
              }
            ]

            """, Normalize(Json("groups", "list", "--json")));
        Assert.Equal("""
            {
              "group": "family",
              "changed": 1
            }

            """, Normalize(Json("groups", "remove", "family", carol.Text, "--json")));
        Assert.Equal("""
            {
              "name": "family",
              "deleted": true
            }

            """, Normalize(Json("groups", "delete", "family", "--json")));
    }

    [Fact]
    public void Quarantine_list_show_and_release()
    {
        Json("init");
        var id = SeedHeld().ToString(CultureInfo.InvariantCulture);
        const string held = """
            {
              "id": 1,
              "contentId": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
              "name": "eviltxt _q_.exe",
              "state": "held",
              "reason": "scanner 'flagger' flagged the file: HOME/quarantine/1.data: Test.Sig FOUND",
              "announcedName": "../../evil\u202Etxt \"q\".exe",
              "size": 9,
              "verified": true,
              "publisher": "PUBLISHER",
              "sources": [
                "PUBLISHER"
              ],
              "path": "HOME/quarantine/1.data",
              "releasedPath": null,
              "created": "TIME+00:00",
              "updated": "TIME+00:00"
            }
            """;
        // The list holds the same object, one level deeper.
        Assert.Equal("[\n" + string.Join('\n', held.Split('\n').Select(line => "  " + line)) + "\n]\n", Normalize(Json("quarantine", "list", "--json")));
        Assert.Equal(held + "\n", Normalize(Json("quarantine", "show", id, "--json")));
        Assert.Equal("""
            {
              "id": 1,
              "contentId": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
              "name": "eviltxt _q_.exe",
              "state": "released",
              "reason": "scanner 'flagger' flagged the file: HOME/quarantine/1.data: Test.Sig FOUND",
              "announcedName": "../../evil\u202Etxt \"q\".exe",
              "size": 9,
              "verified": true,
              "publisher": "PUBLISHER",
              "sources": [
                "PUBLISHER"
              ],
              "path": null,
              "releasedPath": "ROOT/out/eviltxt _q_.exe",
              "created": "TIME+00:00",
              "updated": "TIME+00:00"
            }

            """, Normalize(Json("quarantine", "release", id, "--to", Path.Combine(_cli.Root, "out"), "--json")));
    }

    [Fact]
    public void Backup_offer_add_list_status_versions_remove_and_revoke()
    {
        Json("init");
        using var holder = NodeIdentity.Generate();
        Name(holder.PeerId, "HOLDER");
        Json("peers", "add", holder.PeerId.Text, "--trust", "--name", "holder");
        var folder = Path.Combine(_cli.Root, "documents");
        Directory.CreateDirectory(folder);

        Assert.Equal("""
            {
              "peerId": "HOLDER",
              "quota": 1073741824
            }

            """, Normalize(Json("backup", "offer", holder.PeerId.Text, "--quota", "1g", "--json")));
        Assert.Equal("""
            [
              {
                "peerId": "HOLDER",
                "name": "holder",
                "quota": 1073741824,
                "used": 0,
                "created": "TIME+00:00"
              }
            ]

            """, Normalize(Json("backup", "offers", "--json")));
        // A running node uploads: 'backup add' only records the path (the lock is what tells it a node runs).
        using (NodeLock.Acquire(_cli.Home))
        {
            Assert.Equal("""
                {
                  "path": "ROOT/documents",
                  "holders": [
                    "HOLDER"
                  ],
                  "copies": 1,
                  "keep": "3"
                }

                """, Normalize(Json("backup", "add", folder, "--to", holder.PeerId.Text, "--keep", "3", "--json")));
        }
        using (var db = SecureMeshDatabase.Open(_cli.Home))
        {
            var time = new DateTimeOffset(2026, 11, 25, 10, 0, 0, 123, TimeSpan.Zero);
            db.Backup.AddVersion(new BackupVersionRecord(folder, "thesis.pdf", time, 1_500_000, 1, Cid, false, [Blob]), [(Blob, 1_500_016, new byte[64])]);
            db.Backup.AddVersion(new BackupVersionRecord(folder, "old.txt", time.AddDays(-1), 0, 1, Cid, true, []), []);
        }
        Assert.Equal("""
            [
              {
                "path": "ROOT/documents",
                "holders": [
                  "HOLDER"
                ],
                "copies": 1,
                "keep": "3",
                "files": 1,
                "bytes": 1500000
              }
            ]

            """, Normalize(Json("backup", "list", "--json")));
        Assert.Equal("""
            [
              {
                "path": "ROOT/documents",
                "copies": 1,
                "keep": "3",
                "files": 1,
                "versions": 2,
                "bytes": 1500000,
                "underReplicated": true,
                "holders": [
                  {
                    "peerId": "HOLDER",
                    "state": "uploading",
                    "bytes": 0,
                    "lastProof": null,
                    "missing": 1,
                    "reason": null
                  }
                ]
              }
            ]

            """, Normalize(Json("backup", "status", "--json")));
        Assert.Equal("""
            [
              {
                "path": "ROOT/documents/old.txt",
                "time": "TIME+00:00",
                "size": 0,
                "deleted": true,
                "contentId": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"
              },
              {
                "path": "ROOT/documents/thesis.pdf",
                "time": "TIME+00:00",
                "size": 1500000,
                "deleted": false,
                "contentId": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"
              }
            ]

            """, Normalize(Json("backup", "versions", folder, "--json")));
        using (var db = SecureMeshDatabase.Open(_cli.Home))
        {
            Assert.Equal("""
                {
                  "path": "ROOT/documents",
                  "complete": 0,
                  "copies": 1,
                  "holders": [
                    {
                      "peerId": "HOLDER",
                      "state": "uploading",
                      "bytes": 0,
                      "reason": null
                    }
                  ]
                }

                """, Normalize(Write(ctx => BackupCommands.Finish(ctx, db, folder, []))));
        }
        Assert.Equal("""
            {
              "path": "ROOT/documents",
              "removed": true
            }

            """, Normalize(Json("backup", "remove", folder, "--json")));
        Assert.Equal("""
            {
              "peerId": "HOLDER",
              "revoked": true
            }

            """, Normalize(Json("backup", "revoke", holder.PeerId.Text, "--json")));
    }

    [Fact]
    public void Status_and_transfers_without_a_node()
    {
        Name(PeerIdOf(Json("init", "--json")), "PEER");
        Assert.Equal("""
            {
              "running": false,
              "peerId": "PEER",
              "fingerprint": "PEER_FP",
              "listen": [
                "0.0.0.0:4747"
              ],
              "discovery": "on",
              "connections": [],
              "transfers": [],
              "handshakes": [],
              "refusingUs": [],
              "reachability": null,
              "portMapping": null
            }

            """, Normalize(Json("status", "--json")));
        Assert.Equal("""
            []

            """, Normalize(Json("transfers", "list", "--json")));
    }

    /// <summary>The outputs of commands that need peers, from fixed values (what the node would have answered).</summary>
    [Fact]
    public void Outputs_of_network_commands_from_fixed_values()
    {
        const string peer = "12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer";
        const string relay = "12D3KooWRelayRelayRelayRelayRelayRelayRelayRelayRel";
        var time = new DateTimeOffset(2026, 11, 25, 10, 0, 0, 500, TimeSpan.FromHours(1));
        var odd = "quote \" backslash \\ tab \t newline \n \u001b[31mred\u001b[0m \u202Eevil\u202C héllo 日本語 🙂 <script>&amp;";

        Assert.Equal("""
            {
              "peerId": "12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer",
              "address": "/ip4/127.0.0.1/tcp/4747/p2p/12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer",
              "rttMs": [
                0.25,
                1.5,
                1E-07,
                12345.678
              ]
            }

            """, Write(ctx => PingCommand.PrintJson(ctx, new PingResult(peer, "/ip4/127.0.0.1/tcp/4747/p2p/" + peer, [0.25, 1.5, 1e-7, 12345.678]))));
        Assert.Equal("""
            [
              {
                "id": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
                "contentId": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
                "name": "quote \" backslash \\ tab \t newline \n \u001B[31mred\u001B[0m \u202Eevil\u202C héllo 日本語 \uD83D\uDE42 <script>&amp;",
                "state": "downloading",
                "bytesDone": 1024,
                "bytesTotal": 67108864,
                "bytesPerSecond": 293366312.75,
                "peers": 2,
                "finished": false,
                "reason": null,
                "path": null,
                "quarantineId": null
              },
              {
                "id": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
                "contentId": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
                "name": null,
                "state": "held",
                "bytesDone": 5,
                "bytesTotal": 5,
                "bytesPerSecond": 0,
                "peers": 0,
                "finished": true,
                "reason": "scanner flagged it",
                "path": "/q/1",
                "quarantineId": 7
              }
            ]

            """, Write(ctx => TransferCommands.PrintDownloadsJson(ctx,
            [
                new DownloadInfo(Cid, odd, "downloading", 1024, 67108864, 293366312.75, 2, 10, 3, false, null, null, null),
                new DownloadInfo(Cid, null, "held", 5, 5, 0, 0, 1, 0, true, "scanner flagged it", "/q/1", 7),
            ])));
        Assert.Equal("""
            []

            """, Write(ctx => TransferCommands.PrintDownloadsJson(ctx, [])));
        Assert.Equal("""
            {
              "id": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
              "cancelled": true
            }

            """, Write(ctx => TransferCommands.PrintCancelledJson(ctx, Cid)));
        Assert.Equal("""
            [
              {
                "contentId": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
                "name": "quote \" backslash \\ tab \t newline \n \u001B[31mred\u001B[0m \u202Eevil\u202C héllo 日本語 \uD83D\uDE42 <script>&amp;",
                "size": 123456789,
                "peers": [
                  "12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer",
                  "12D3KooWRelayRelayRelayRelayRelayRelayRelayRelayRel"
                ]
              },
              {
                "contentId": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
                "name": "b",
                "size": 0,
                "peers": []
              }
            ]

            """, Write(ctx => TransferCommands.PrintSearch(ctx, [(Cid, odd, 123456789, new[] { peer, relay }), (Cid, "b", 0, Array.Empty<string>())], null)));
        Assert.Equal("""
            [
              {
                "peerId": "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV",
                "ok": true,
                "reason": null
              },
              {
                "peerId": "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV",
                "ok": false,
                "reason": "quote \" backslash \\ tab \t newline \n \u001B[31mred\u001B[0m \u202Eevil\u202C héllo 日本語 \uD83D\uDE42 <script>&amp;"
              }
            ]

            """, Write(ctx => BackupCommands.PrintCheckJson(ctx, [new HolderOutcome(PeerId.Parse(KnownPeer), 1, 0, null), new HolderOutcome(PeerId.Parse(KnownPeer), 0, 0, odd)])));
        Assert.Equal("""
            [
              {
                "peerId": "12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer",
                "ok": true,
                "reason": null
              },
              {
                "peerId": "12D3KooWRelayRelayRelayRelayRelayRelayRelayRelayRel",
                "ok": false,
                "reason": "proof failed"
              }
            ]

            """, Write(ctx => BackupCommands.PrintCheckJson(ctx,
            [
                new BackupHolderStatus(peer, "complete", 100, time, 0, null),
                new BackupHolderStatus(relay, "failing", 0, null, 3, "proof failed"),
            ])));
        Assert.Equal("""
            {
              "catalog": 42,
              "files": 3,
              "bytes": 1500000,
              "alreadyThere": 1,
              "peers": 2,
              "problems": [
                "one",
                "quote \" backslash \\ tab \t newline \n \u001B[31mred\u001B[0m \u202Eevil\u202C héllo 日本語 \uD83D\uDE42 <script>&amp;"
              ]
            }

            """, Write(ctx => BackupCommands.PrintRestoreJson(ctx, new RestoreResult(42, 3, 1_500_000, 1, 2, ["one", odd]))));
        Assert.Equal("""
            {
              "contentId": "b3:abc",
              "name": "quote \" backslash \\ tab \t newline \n \u001B[31mred\u001B[0m \u202Eevil\u202C héllo 日本語 \uD83D\uDE42 <script>&amp;",
              "size": 67108864,
              "state": "released",
              "path": "/tmp/x",
              "reason": null,
              "quarantineId": 7,
              "chunkRequests": 64,
              "resumedChunks": 3,
              "bytesPerSecond": 293366312.75
            }

            """, Write(ctx => ctx.WriteJson(new GetOutput("b3:abc", odd, 67108864, "released", "/tmp/x", null, 7, 64, 3, 293366312.75).WriteTo)));
        Assert.Equal("""
            {
              "path": "/data/shared",
              "files": 3,
              "indexed": 2,
              "unchanged": 1,
              "removed": 0,
              "bytesHashed": 70005,
              "seconds": null,
              "failed": [
                "/data/shared/x: unreadable"
              ],
              "skipped": 2
            }

            """, Write(ctx => ShareCommands.PrintShareResult(ctx, "/data/shared", 3, 2, 1, 0, 70005, null, ["/data/shared/x: unreadable"], 2)));
        Assert.Equal("""
            {
              "path": "/data/shared",
              "files": 3,
              "indexed": 2,
              "unchanged": 1,
              "removed": 0,
              "bytesHashed": 70005,
              "seconds": 1.25,
              "failed": [],
              "skipped": 0
            }

            """, Write(ctx => ShareCommands.PrintShareResult(ctx, "/data/shared", 3, 2, 1, 0, 70005, TimeSpan.FromMilliseconds(1250), [], 0)));
    }

    /// <summary>The control API's records the commands print as they are: status with every part filled, a connection, a broken log.</summary>
    [Fact]
    public void Records_printed_as_they_are()
    {
        const string peer = "12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer";
        const string relay = "12D3KooWRelayRelayRelayRelayRelayRelayRelayRelayRel";
        var time = new DateTimeOffset(2026, 11, 25, 10, 0, 0, 500, TimeSpan.FromHours(1));
        var connection = new ConnectionInfo(peer, "Zoë \"q\"", "outbound", time, 1000, 2000, "ab12-cd34", "/ip4/127.0.0.1/tcp/1/p2p-circuit", "relayed", relay);
        var status = new NodeStatus(true, peer, "abcd-efgh", ["0.0.0.0:4747", "[::]:4747"], "lan", [connection, new ConnectionInfo(relay, null, "inbound", time, 0, 0, "x", null)],
            [new TransferInfo("t1", Cid, null, "download", "downloading", 1, 2, 1)],
            [new HandshakeInfo(peer, null, "sas", time, "inbound", "closed by peer")],
            [new RefusalInfo(relay, "r", time, 3, time.AddMinutes(5))],
            [new ReachabilityInfo("/ip4/192.0.2.1/tcp/4747", "reachable", "mapped", true, time), new ReachabilityInfo("/ip4/10.0.0.1/tcp/4747", "unknown", "listen", false, null)],
            "pcp: 192.0.2.1:4747");
        Assert.Equal("""
            {
              "running": true,
              "peerId": "12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer",
              "fingerprint": "abcd-efgh",
              "listen": [
                "0.0.0.0:4747",
                "[::]:4747"
              ],
              "discovery": "lan",
              "connections": [
                {
                  "peerId": "12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer",
                  "name": "Zoë \"q\"",
                  "direction": "outbound",
                  "since": "2026-11-25T10:00:00.5+01:00",
                  "bytesSent": 1000,
                  "bytesReceived": 2000,
                  "sas": "ab12-cd34",
                  "remote": "/ip4/127.0.0.1/tcp/1/p2p-circuit",
                  "path": "relayed",
                  "relay": "12D3KooWRelayRelayRelayRelayRelayRelayRelayRelayRel"
                },
                {
                  "peerId": "12D3KooWRelayRelayRelayRelayRelayRelayRelayRelayRel",
                  "name": null,
                  "direction": "inbound",
                  "since": "2026-11-25T10:00:00.5+01:00",
                  "bytesSent": 0,
                  "bytesReceived": 0,
                  "sas": "x",
                  "remote": null,
                  "path": "direct",
                  "relay": null
                }
              ],
              "transfers": [
                {
                  "id": "t1",
                  "contentId": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
                  "name": null,
                  "direction": "download",
                  "state": "downloading",
                  "bytesDone": 1,
                  "bytesTotal": 2,
                  "peers": 1
                }
              ],
              "handshakes": [
                {
                  "peerId": "12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer",
                  "name": null,
                  "sas": "sas",
                  "time": "2026-11-25T10:00:00.5+01:00",
                  "direction": "inbound",
                  "ended": "closed by peer"
                }
              ],
              "refusingUs": [
                {
                  "peerId": "12D3KooWRelayRelayRelayRelayRelayRelayRelayRelayRel",
                  "name": "r",
                  "lastRefusal": "2026-11-25T10:00:00.5+01:00",
                  "refusals": 3,
                  "nextAttempt": "2026-11-25T10:05:00.5+01:00"
                }
              ],
              "reachability": [
                {
                  "address": "/ip4/192.0.2.1/tcp/4747",
                  "state": "reachable",
                  "source": "mapped",
                  "advertised": true,
                  "checked": "2026-11-25T10:00:00.5+01:00"
                },
                {
                  "address": "/ip4/10.0.0.1/tcp/4747",
                  "state": "unknown",
                  "source": "listen",
                  "advertised": false,
                  "checked": null
                }
              ],
              "portMapping": "pcp: 192.0.2.1:4747"
            }

            """, Write(ctx => ctx.WriteJson(status, CliJsonContext.Output.NodeStatus)));
        Assert.Equal("""
            {
              "running": false,
              "peerId": null,
              "fingerprint": null,
              "listen": [],
              "discovery": "off",
              "connections": [],
              "transfers": [],
              "handshakes": null,
              "refusingUs": null,
              "reachability": null,
              "portMapping": null
            }

            """, Write(ctx => ctx.WriteJson(new NodeStatus(false, null, null, [], "off", [], []), CliJsonContext.Output.NodeStatus)));
        Assert.Equal("""
            {
              "peerId": "12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer",
              "name": "Zoë \"q\"",
              "direction": "outbound",
              "since": "2026-11-25T10:00:00.5+01:00",
              "bytesSent": 1000,
              "bytesReceived": 2000,
              "sas": "ab12-cd34",
              "remote": "/ip4/127.0.0.1/tcp/1/p2p-circuit",
              "path": "relayed",
              "relay": "12D3KooWRelayRelayRelayRelayRelayRelayRelayRelayRel"
            }

            """, Write(ctx => ctx.WriteJson(connection, CliJsonContext.Output.ConnectionInfo)));
        Assert.Equal("""
            {
              "ok": false,
              "entries": 12,
              "brokenSeq": 7,
              "reason": "hash mismatch at entry 7",
              "headSeq": 0,
              "headHash": ""
            }

            """, Write(ctx => ctx.WriteJson(new LogVerification(false, 12, 7, "hash mismatch at entry 7"), CliJsonContext.Output.LogVerification)));
        Assert.Equal("""
            {
              "contentId": "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
              "name": "securemesh-demo-sample.bin",
              "size": 3145728,
              "seconds": 2.5,
              "downloadSeconds": 1.25,
              "bytesPerSecond": 2516582.4,
              "seeders": [
                {
                  "name": "A",
                  "peerId": "12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer",
                  "fingerprint": "abcd",
                  "chunksServed": 6
                },
                {
                  "name": "B",
                  "peerId": "12D3KooWRelayRelayRelayRelayRelayRelayRelayRelayRel",
                  "fingerprint": "efgh",
                  "chunksServed": 6
                }
              ],
              "downloader": "12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeerPeerPeer",
              "peersUsed": 2,
              "chunkRequests": 12,
              "verified": true,
              "released": true,
              "identical": true,
              "folder": "/tmp/securemesh-demo-x",
              "kept": false
            }

            """, Write(ctx => ctx.WriteJson(new DemoSummary(Cid, "securemesh-demo-sample.bin", 3145728, 2.5, 1.25, 2516582.4,
                [new DemoSeeder("A", peer, "abcd", 6), new DemoSeeder("B", relay, "efgh", 6)], peer, 2, 12, true, true, true, "/tmp/securemesh-demo-x", false), CliJsonContext.Output.DemoSummary)));
    }

    /// <summary>The Peer ID of RFC 8032's first Ed25519 test key (keys/fixtures/peerid-vectors.json).</summary>
    private static readonly string Blob = new('b', 64);

    private const string KnownPeer = "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV";

    /// <summary>Peer IDs of new keys, in ordinal order (only the Peer IDs are used: the keys are disposed at once).</summary>
    private static PeerId[] Sorted(int count) =>
        [.. Enumerable.Range(0, count).Select(_ => { using var key = NodeIdentity.Generate(); return key.PeerId; }).OrderBy(p => p.Text, StringComparer.Ordinal)];

    private string Write(Action<CliContext> write)
    {
        var output = new StringWriter();
        var console = new CliConsole(output, new StringWriter(), new StringReader(string.Empty), _ => null, interactive: false);
        write(new CliContext(console, _cli.Home, json: true, verbose: false));
        return output.ToString();
    }

    private string Json(params string[] args)
    {
        var result = _cli.Home_(args);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Out;
    }

    private static string PeerIdOf(string idJson)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(idJson);
        return doc.RootElement.GetProperty("peerId").GetString()!;
    }

    private void Name(string peerId, string name)
    {
        _names.Add((PeerId.Parse(peerId).Fingerprint, name + "_FP"));
        _names.Add((peerId, name));
    }

    private void Name(PeerId peerId, string name) => Name(peerId.Text, name);

    /// <summary>Replaces what differs from run to run with fixed names; times keep their offset, so its layout is still compared.</summary>
    private string Normalize(string json)
    {
        foreach (var (value, name) in _names.Append((_cli.Home, "HOME")).Append((_cli.Root, "ROOT")).OrderByDescending(n => n.Item1.Length))
        {
            json = json.Replace(value, name, StringComparison.Ordinal);
        }
        json = TimePattern().Replace(json, "\"TIME$1\"");
        json = HashPattern().Replace(json, "HASH");
        return SecondsPattern().Replace(json, "\"seconds\": SECONDS");
    }

    [GeneratedRegex("\"\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(?:\\.\\d{1,7})?(Z|[+-]\\d{2}:\\d{2})\"")]
    private static partial Regex TimePattern();

    [GeneratedRegex("\\b[0-9a-f]{64}\\b")]
    private static partial Regex HashPattern();

    [GeneratedRegex("\"seconds\": [0-9.E+-]+")]
    private static partial Regex SecondsPattern();

    /// <summary>A download held by a scanner that flags everything, through the real pipeline; its ID.</summary>
    private long SeedHeld()
    {
        var script = Path.Combine(_cli.Root, "flagger");
        File.WriteAllText(script, "#!/bin/sh\necho \"$1: Test.Sig FOUND\"\nexit 1\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var db = SecureMeshDatabase.Open(_cli.Home);
        using var publisher = NodeIdentity.Generate();
        Name(publisher.PeerId, "PUBLISHER");
        db.Trust.AddPeer(publisher.PeerId, "alice", null, trusted: true);
        var manager = new QuarantineManager(db, _cli.Home, new ScannerRunner(script, TimeSpan.FromSeconds(20)));
        var data = "bad bytes"u8.ToArray();
        var item = manager.BeginDownload(Cid, "../../evil\u202Etxt \"q\".exe", data.Length, publisher.PeerId, [publisher.PeerId]);
        using (var part = manager.OpenPart(item.Id))
        {
            part.Write(data);
        }
        var outcome = manager.CompleteAsync(item.Id, (_, _) => Task.FromResult(true), CancellationToken.None).GetAwaiter().GetResult();
        Assert.False(outcome.Released);
        return item.Id;
    }
}
