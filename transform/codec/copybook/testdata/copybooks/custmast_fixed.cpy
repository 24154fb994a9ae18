000100*================================================================ CUSTMAST
000200* CUSTOMER MASTER RECORD - LAYOUT CUSTMAST                        CUSTMAST
000300*================================================================ CUSTMAST
000400 01  CUSTOMER-MASTER.                                             CUSTMAST
000500     05  CUST-ID                 PIC 9(8).                        CUSTMAST
000600     05  CUST-TYPE               PIC X.                           CUSTMAST
000700         88  CUST-PERSON         VALUE 'P'.                       CUSTMAST
000800         88  CUST-COMPANY        VALUE 'C' 'G'                    CUSTMAST
000900                                       'X' THRU 'Z'.              CUSTMAST
001000     05  CUST-NAME.                                               CUSTMAST
001100         10  CUST-LAST-NAME      PIC X(20).                       CUSTMAST
001200         10  CUST-FIRST-NAME     PIC X(15).                       CUSTMAST
001300     05  CUST-ADDRESS.                                            CUSTMAST
001400         10  CUST-STREET         PIC X(25).                       CUSTMAST
001500         10  CUST-CITY           PIC X(15).                       CUSTMAST
001600         10  CUST-Z                                               CUSTMAST
001600-    IP            PIC 9(5).                                      CUSTMAST
001700         10  CUST-COUNTRY        PIC XX VALUE 'US'.               CUSTMAST
001800     05  CUST-BALANCE            PIC S9(9)V99 COMP-3.             CUSTMAST
001900     05  CUST-CREDIT-LIMIT       PIC S9(7)V99                     CUSTMAST
002000                                 USAGE IS PACKED-DECIMAL.         CUSTMAST
002100     05  CUST-OPEN-DATE.                                          CUSTMAST
002200         10  CUST-OPEN-YYYY      PIC 9(4).                        CUSTMAST
002300         10  CUST-OPEN-MM        PIC 99.                          CUSTMAST
002400         10  CUST-OPEN-DD        PIC 99.                          CUSTMAST
002500     05  CUST-BRANCH             PIC S9(4) COMP.                  CUSTMAST
002600     05  CUST-SCORE              PIC S9(3)                        CUSTMAST
002700             SIGN IS LEADING SEPARATE                             CUSTMAST
002700             CHARACTER.                                           CUSTMAST
002800     05  CUST-YTD-INTEREST       PIC S9(5)V99.                    CUSTMAST
002900     05  FILLER                  PIC X(10).                       CUSTMAST
003000     05  CUST-PHONE-COUNT        PIC 9.                           CUSTMAST
003100     05  CUST-PHONES OCCURS 0 TO 3 TIMES                          CUSTMAST
003200                     DEPENDING ON CUST-PHONE-COUNT.               CUSTMAST
003300         10  PHONE-TYPE          PIC X.                           CUSTMAST
003400         10  PHONE-NUMBER        PIC X(12).                       CUSTMAST
003500 66  CUST-FULL-NAME RENAMES CUST-LAST-NAME THRU CUST-FIRST-NAME.  CUSTMAST
